#!/usr/bin/python3
"""The peer stack of the benchmark: the seed's FastAPI backend pattern.

One process, FastAPI under uvicorn (Debian's python3-fastapi and
python3-uvicorn; uvloop and httptools are used when installed, as
`uvicorn[standard]` would), a `StreamingResponse` of `text/event-stream` with
the pattern's headers (`Cache-Control: no-cache`, `X-Accel-Buffering: no`,
`Connection: keep-alive`) and its framing: `event:`/`id:`/`data:` lines, a
`connected` event first, every update as an `event: message` whose data is
`json.dumps(update)`, a `done` event last, and heartbeat comments while the
producer waits. (sse-starlette's EventSourceResponse is not in Debian; this
writes the same bytes it would.)

It answers the request the load client (tests/bench/stream_bench) sends to
agentstream's gateway, so one client measures both:

  GET /api/chat/stream?message=...&specialists=Synthetic
      &options={"count":N,"size":S,"rate":R}[&pace=asap|written]

and produces what a run of the Synthetic specialist produces through
agentstream (the orchestrator's status/thinking/activation updates, then per
partial result a progress update when its percentage changes, `count`
partial results of `size` bytes at `rate` per second (0: as fast as it can),
then specialist_complete, synthesis, status and complete), each JSON update
carrying `emitted_at_ns` (time.time_ns() when the producer made it), so the
client's latency (emitted_at -> receipt) means the same thing on both.

  pace=asap     (default) yields each update as soon as it is produced;
  pace=written  the pattern as written: `await asyncio.sleep(0.001)` after
                every event ("Force flush") and before the first.

Also GET /healthz. Listens on 127.0.0.1 only; with --port=0 it picks a free
port and writes it to --port-file once it is listening. Ends on SIGTERM or
SIGINT.
"""

import argparse
import asyncio
import json
import os
import socket
import time

import fastapi
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
import uvicorn

app = FastAPI()
HEARTBEAT_S = 15.0

HEADERS = {
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',  # Disable Nginx buffering
    'Connection': 'keep-alive',
}


def frame(event, data, event_id=None):
  """One SSE event: id, event and data lines, a blank line."""
  head = f'id: {event_id}\n' if event_id is not None else ''
  return f'{head}event: {event}\ndata: {data}\n\n'


async def process_request(rid, message, specialist, count, size, rate,
                          state):
  """The updates of one run, as the Synthetic specialist's run yields them
  through agentstream. Waits for `rate` by sleeping; while it waits longer
  than a heartbeat interval, yields None (a heartbeat is due)."""
  seq = 0

  def update(kind, **fields):
    nonlocal seq
    seq += 1
    u = {'type': kind, 'request_id': rid, 'seq': seq}
    if 'specialist' in fields:
      u['specialist'] = fields.pop('specialist')
    u['emitted_at_ns'] = time.time_ns()
    u.update(fields)
    return u

  yield update('status', status='analyzing', message='Analyzing the request')
  yield update('thinking', agent='Orchestrator',
               thought=f'The request names its specialists: {specialist}. '
               'I will ask exactly those.', visible=True)
  yield update('status', status='delegating',
               message=f'Delegating to {specialist}')
  yield update('specialist_activated', specialist=specialist,
               task=f'Analyse this request: "{message}".', icon='🧪',
               display_name='Synthetic Load')
  payload = 'x' * size
  start = time.monotonic()
  last_pct = -1
  for i in range(1, count + 1):
    if rate > 0:
      due = start + (i - 1) / rate
      while True:
        wait = due - time.monotonic()
        if wait <= 0:
          break
        quiet = state['last_write'] + HEARTBEAT_S - time.monotonic()
        if quiet <= 0:
          yield None
          continue
        await asyncio.sleep(min(wait, quiet))
    pct = i * 100 // count
    if pct != last_pct:
      last_pct = pct
      yield update('progress', specialist=specialist, progress=pct,
                   current_action=f'update {i} of {count}')
    yield update('partial_result', specialist=specialist,
                 result={'i': i, 'n': count, 'payload': payload})
  yield update('specialist_complete', specialist=specialist, outcome='ok',
               duration_ms=int((time.monotonic() - start) * 1000))
  yield update('synthesis',
               message='1 of 1 specialists done; combining their results.',
               specialists_complete=[specialist], specialists_pending=[])
  yield update('status', status='synthesizing',
               message='Combining the results of 1 specialists')
  yield update('complete', outcome='ok',
               result={'answer': f'{specialist} reported {count} updates.'})


@app.get('/healthz')
async def healthz():
  return JSONResponse({'status': 'ok'})


@app.get('/api/chat/stream')
async def stream_endpoint(message: str = '', specialists: str = 'Synthetic',
                          options: str = '{}', pace: str = 'asap'):
  try:
    opts = json.loads(options)
    count = int(opts.get('count', 10))
    size = int(opts.get('size', 100))
    rate = float(opts.get('rate', 0))
  except (ValueError, TypeError, AttributeError) as e:
    return JSONResponse({'error': f'bad options: {e}'}, status_code=400)
  if pace not in ('asap', 'written') or count < 0 or size < 0 or rate < 0:
    return JSONResponse({'error': 'bad pace, count, size or rate'},
                        status_code=400)
  written = pace == 'written'
  rid = 'req_' + os.urandom(8).hex()
  specialist = specialists.split(',')[0] or 'Synthetic'

  async def event_generator():
    state = {'last_write': time.monotonic()}
    if written:
      await asyncio.sleep(0.001)  # CRITICAL: Add delay to prevent buffering
    yield frame('connected', json.dumps({'type': 'connected',
                                         'status': 'connected',
                                         'request_id': rid}), f'{rid}:0')
    async for u in process_request(rid, message, specialist, count, size,
                                   rate, state):
      if u is None:
        yield ': heartbeat\n\n'
      else:
        yield frame('message', json.dumps(u), f'{rid}:{u["seq"]}')
      state['last_write'] = time.monotonic()
      if written:
        await asyncio.sleep(0.001)  # Force flush
    yield frame('done', json.dumps({'type': 'done', 'status': 'complete',
                                    'request_id': rid}))

  return StreamingResponse(event_generator(), media_type='text/event-stream',
                           headers=HEADERS)


def _have(module):
  """`module` when it can be imported (uvicorn's "auto" picks it), else
  ''."""
  try:
    __import__(module)
    return module
  except ImportError:
    return ''


def main():
  global HEARTBEAT_S
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--port', type=int, default=0,
                      help='port on 127.0.0.1 (0: a free one)')
  parser.add_argument('--port-file', default='',
                      help='write the bound port here once listening')
  parser.add_argument('--heartbeat-s', type=float, default=HEARTBEAT_S,
                      help='heartbeat comment after this long without a write')
  args = parser.parse_args()
  HEARTBEAT_S = args.heartbeat_s
  sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  sock.bind(('127.0.0.1', args.port))
  sock.listen(4096)
  config = uvicorn.Config(app, log_level='warning', access_log=False,
                          backlog=4096, lifespan='off')
  server = uvicorn.Server(config)

  async def serve():
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():
      await asyncio.sleep(0.01)
    if args.port_file and server.started:
      tmp = args.port_file + '.tmp'
      with open(tmp, 'w') as f:
        f.write(str(sock.getsockname()[1]))
      os.replace(tmp, args.port_file)
    await task

  config.setup_event_loop()  # uvloop when installed, as uvicorn would.
  print(f'fastapi_peer: FastAPI {fastapi.__version__}, uvicorn '
        f'{uvicorn.__version__}, loop {_have("uvloop") or "asyncio"}, http '
        f'{_have("httptools") or "h11"}', flush=True)
  asyncio.run(serve())


if __name__ == '__main__':
  main()
