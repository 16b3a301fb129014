#!/usr/bin/env python3
"""The edge proxy's end-to-end test (ctest: edge_proxy_e2e), without Docker.

Starts the real synthetic specialist, orchestrator and gateway from
AGENTSTREAM_BIN_DIR on free loopback ports, then host nginx through
deploy/nginx/entrypoint.sh (the container's own entrypoint and template: a
self-signed certificate made at start, the upstream set to the local gateway,
its own prefix, pid file and temporary paths in a temporary directory), and
streams through it with `curl --http2 -k -N`. It checks that:

  - the edge speaks HTTP/2 over TLS;
  - a Synthetic run of several seconds delivers its first update long before
    the run finishes, and its updates arrive spread over the run (no
    buffering anywhere), with no gzip on text/event-stream;
  - heartbeats pass;
  - X-Request-Id reaches the gateway (the run carries it as its correlation id), and
    the edge makes a valid one when the client sends none or a bad one;
  - Last-Event-ID reaches the gateway: a stream cut in the middle and resumed
    through the edge continues right after the given seq, nothing lost,
    nothing repeated;
  - with the gateway gone, the edge answers a JSON 503 with Retry-After.

Every wait has a deadline; every process is stopped by its PID (and dies with
this script). Exit status: 0 pass, 1 failure, 77 skipped (no nginx or no
HTTP/2 curl, outside CI; under CI that is a failure:
tests/e2e/ci_policy.py).
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from edge_support import (Failure, Processes, Stream, check, curl_once,
                          free_port, http_ok, log, read_port, seq_of,
                          wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.dirname(HERE))  # tests/e2e: ci_policy
from ci_policy import skip_or_fail  # pylint: disable=wrong-import-position
ENTRYPOINT = os.path.join(ROOT, 'deploy', 'nginx', 'entrypoint.sh')

# The Synthetic run: COUNT partial results at RATE a second (~5 s).
COUNT = 50
RATE = 10
HEARTBEAT_MS = 400



def run(args, tmp, procs):
  bin_dir = args.bin_dir
  ports = os.path.join(tmp, 'ports')
  os.makedirs(ports)

  procs.start('synthetic', [
      os.path.join(bin_dir, 'synthetic'), '--host', '127.0.0.1', '--port',
      '0', '--port-file', os.path.join(ports, 'synthetic'), '--count',
      str(COUNT), '--rate', str(RATE)])
  syn = wait_for('synthetic listening',
                 lambda: read_port(os.path.join(ports, 'synthetic')), 30,
                 procs)
  procs.start('orchestrator', [
      os.path.join(bin_dir, 'orchestrator'), '--host', '127.0.0.1', '--port',
      '0', '--port-file', os.path.join(ports, 'orchestrator'),
      '--specialist', f'Synthetic=127.0.0.1:{syn}'])
  orch = wait_for('orchestrator listening',
                  lambda: read_port(os.path.join(ports, 'orchestrator')), 30,
                  procs)
  procs.start('gateway', [
      os.path.join(bin_dir, 'gateway'), '--host', '127.0.0.1', '--port', '0',
      '--port-file', os.path.join(ports, 'gateway'), '--orchestrator',
      f'127.0.0.1:{orch}', '--heartbeat-ms', str(HEARTBEAT_MS),
      '--web-root', os.path.join(ROOT, 'gateway', 'web'), '--log-level',
      'info'])
  gw = wait_for('gateway listening',
                lambda: read_port(os.path.join(ports, 'gateway')), 30, procs)
  wait_for('gateway ready', lambda: http_ok(f'http://127.0.0.1:{gw}/readyz'),
           30, procs)

  def synthetic_available():
    body = http_ok(f'http://127.0.0.1:{gw}/api/specialists')
    if not body:
      return False
    d = json.loads(body)
    items = d.get('specialists', d) if isinstance(d, dict) else d
    return any(s.get('name') == 'Synthetic' and s.get('available')
               for s in items)

  wait_for('Synthetic available', synthetic_available, 30, procs)

  # The edge: the container's entrypoint and template, host nginx.
  edge_port = free_port()
  run_dir = os.path.join(tmp, 'edge')
  env = dict(os.environ)
  env.update({
      'AGENTSTREAM_EDGE_UPSTREAM': f'127.0.0.1:{gw}',
      'AGENTSTREAM_EDGE_LISTEN': f'127.0.0.1:{edge_port}',
      'AGENTSTREAM_EDGE_RUN_DIR': run_dir,
      'AGENTSTREAM_EDGE_TLS_DIR': os.path.join(tmp, 'no-mounted-cert'),
      'AGENTSTREAM_EDGE_ACCESS_LOG': os.path.join(tmp, 'edge_access.log'),
      'AGENTSTREAM_EDGE_LOG_LEVEL': 'info',
      'AGENTSTREAM_EDGE_WORKERS': '1',
      'AGENTSTREAM_EDGE_WAIT_S': '5',
      'AGENTSTREAM_EDGE_NGINX': args.nginx,
  })
  edge = f'https://127.0.0.1:{edge_port}'
  procs.start('edge', ['sh', ENTRYPOINT], env=env)
  wait_for('edge answering over TLS',
           lambda: curl_once(args.curl, f'{edge}/edge-healthz')[1] == 200, 20,
           procs)
  check(os.path.exists(os.path.join(run_dir, 'tls', 'tls.crt')),
        'the entrypoint generated a self-signed certificate')
  # What no run of a few seconds on loopback can show (nginx forwards
  # promptly to a fast reader even when it buffers; read timeouts bite after
  # minutes): the rendered config says so.
  with open(os.path.join(run_dir, 'nginx.conf')) as f:
    conf = re.sub(r'#[^\n]*', '', f.read())
  directives = {m.group(1): m.group(2).strip() for m in
                re.finditer(r'(?m)^\s*(proxy_\w+)\s+([^;]*);', conf)}
  for name, want in (('proxy_buffering', 'off'), ('proxy_cache', 'off'),
                     ('proxy_http_version', '1.1')):
    check(directives.get(name) == want, f'rendered config: {name} {want}')
  check(re.search(r'(?m)^\s*proxy_set_header\s+Connection\s+"";', conf),
        'rendered config: keep-alive to the gateway (Connection "")')
  timeout = directives.get('proxy_read_timeout', '60s')
  seconds = int(re.match(r'(\d+)', timeout).group(1)) * (
      3600 if timeout.endswith('h') else 60 if timeout.endswith('m') else 1)
  check(seconds >= 3600, f'rendered config: proxy_read_timeout {timeout}')

  # 1. HTTP/2, and the request id.
  version, status, rid = curl_once(args.curl, f'{edge}/healthz',
                                   ['X-Request-Id: edge-hc.1_A'])
  check(version == '2' and status == 200,
        f'GET /healthz through the edge is HTTP/2 200 (got {version} {status})')
  check(rid == 'edge-hc.1_A',
        f'the client\'s X-Request-Id reaches the gateway and returns ({rid})')
  _, _, rid = curl_once(args.curl, f'{edge}/healthz')
  check(rid is not None and re.fullmatch(r'[0-9a-f]{32}', rid),
        f'without X-Request-Id the edge makes one the gateway keeps ({rid})')
  _, _, rid = curl_once(args.curl, f'{edge}/healthz',
                        ['X-Request-Id: not valid!' + 'x' * 80])
  check(rid is not None and re.fullmatch(r'[0-9a-f]{32}', rid),
        f'an invalid X-Request-Id is replaced at the edge ({rid})')

  # 2. A Synthetic run of ~COUNT/RATE seconds, streamed through the edge.
  url = (f'{edge}/api/chat/stream?message=edge%20streaming%20check'
         '&specialists=Synthetic')
  corr = 'edge-run-' + secrets.token_hex(6)
  s = Stream(args.curl, url, [f'X-Request-Id: {corr}', 'Accept-Encoding: gzip'],
             os.path.join(tmp, 'stream1.headers'))
  rc = s.finish(timeout=COUNT / RATE + 30)
  check(rc == 0, f'the stream ended cleanly (curl exit {rc})')
  status_line, headers = s.headers()
  check(status_line is not None and status_line.startswith('HTTP/2 200'),
        f'the stream is HTTP/2 200 ({status_line})')
  check(headers.get('content-type', '').startswith('text/event-stream'),
        f'content-type {headers.get("content-type")}')
  check('content-encoding' not in headers,
        'no gzip on text/event-stream although the client accepts it')
  # The run's id is the gateway's; ours is the correlation id
  # (docs/SECURITY.md, "Runs belong to their owner").
  rid = headers.get('x-request-id', '')
  check(re.fullmatch(r'run_[0-9a-f]{32}', rid),
        f'the response carries the run\'s id ({rid})')
  events = s.payloads()
  check(events and events[0][2].get('type') == 'connected' and
        events[0][2].get('request_id') == rid and
        events[0][2].get('correlation_id') == corr,
        'the X-Request-Id sent through the edge is the run\'s correlation id')
  check(all(ev.get('id', '').startswith(rid + ':') for _, ev, _ in events
            if 'id' in ev), 'every event id is <run id>:<seq>')
  partial = [t for t, _, d in events if d.get('type') == 'partial_result']
  done = [t for t, ev, d in events if ev.get('event') == 'done']
  check(len(partial) == COUNT, f'{len(partial)} of {COUNT} partial results')
  check(len(done) == 1 and events[-1][1].get('event') == 'done',
        'the stream ends with done')
  first_update = next(t for t, _, d in events if d.get('type') != 'connected')
  t_done = done[0]
  log(f'FIGURES: first update {first_update * 1000:.0f} ms, first partial '
      f'result {partial[0] * 1000:.0f} ms, done {t_done * 1000:.0f} ms '
      f'after the request; partial results {partial[0]:.2f}..{partial[-1]:.2f}'
      f' s; {len(s.heartbeats)} heartbeats')
  check(t_done >= 0.6 * COUNT / RATE,
        f'the run lasts ~{COUNT / RATE:.0f} s ({t_done:.2f} s)')
  check(first_update < 0.3 * t_done,
        f'the first update arrives long before the run ends '
        f'({first_update:.2f} s of {t_done:.2f} s)')
  check(partial[-1] - partial[0] >= 0.6 * (COUNT - 1) / RATE,
        'partial results arrive spread over the run, not in one burst '
        f'({partial[-1] - partial[0]:.2f} s between the first and the last)')
  check(len(s.heartbeats) >= 3,
        f'heartbeats pass through the edge ({len(s.heartbeats)} in '
        f'{t_done:.1f} s at {HEARTBEAT_MS} ms)')

  # 3. Cut a stream in the middle, resume it through the edge.
  s1 = Stream(args.curl, url, ['X-Request-Id: edge-resume'],
              os.path.join(tmp, 'stream2.headers'))
  got = s1.wait_until(
      lambda st: sum(1 for _, ev in st.events
                     if '"partial_result"' in ev.get('data', '')) >= 15, 20)
  s1.cut()
  check(got, 'the second run streamed 15 partial results before the cut')
  ids1 = [ev['id'] for _, ev in s1.events if 'id' in ev]
  last = ids1[-1]
  rid2 = last.rsplit(':', 1)[0]
  last_seq = seq_of(last, rid2)
  parts1 = [json.loads(ev['data']).get('seq') for _, ev in s1.events
            if '"partial_result"' in ev.get('data', '')]
  check(not any(ev.get('event') == 'done' for _, ev in s1.events),
        f'cut before the end (last event {last})')
  time.sleep(0.5)
  s2 = Stream(args.curl, url, [f'Last-Event-ID: {last}'],
              os.path.join(tmp, 'stream3.headers'))
  rc = s2.finish(timeout=COUNT / RATE + 30)
  status_line, headers = s2.headers()
  check(rc == 0 and status_line and status_line.startswith('HTTP/2 200'),
        f'the resume is HTTP/2 200 ({status_line}, curl exit {rc})')
  check(headers.get('x-request-id') == rid2,
        'the resumed stream belongs to the cut run')
  opened = s2.payloads()[0][2] if s2.events else {}
  check(opened.get('type') == 'connected' and
        opened.get('status') == 'resumed' and
        opened.get('after_seq') == last_seq,
        f'the gateway resumed after the Last-Event-ID it got ({opened})')
  # The updates (message events; `connected` carries the resume point and
  # `done` the last seq again).
  seqs2 = [seq_of(ev['id'], rid2) for _, ev in s2.events
           if ev.get('event') == 'message' and 'id' in ev]
  check(seqs2 and seqs2[0] == last_seq + 1,
        f'the resume continues right after seq {last_seq} '
        f'(first seq {seqs2[0] if seqs2 else None})')
  check(all(b > a for a, b in zip(seqs2, seqs2[1:])),
        'seqs increase, nothing repeated')
  parts2 = [json.loads(ev['data']).get('seq') for _, ev in s2.events
            if '"partial_result"' in ev.get('data', '')]
  check(len(parts1) + len(parts2) == COUNT and
        not set(parts1) & set(parts2),
        f'{len(parts1)} + {len(parts2)} partial results: all {COUNT}, '
        'none twice')
  check(s2.events[-1][1].get('event') == 'done', 'the resumed stream ends')
  metrics = (http_ok(f'http://127.0.0.1:{gw}/metrics') or b'').decode()
  resumes = re.search(r'(?m)^\S*resumes_total(?:\{[^}]*\})? (\d+)', metrics)
  check(resumes is not None and int(resumes.group(1)) == 1,
        'the gateway counted exactly one resume (Last-Event-ID received; '
        f'resumes_total {resumes.group(1) if resumes else None})')

  # 4. The edge's access log ties the correlation id to the run's id.
  def logged():
    try:
      with open(os.path.join(tmp, 'edge_access.log')) as f:
        return f'rid={corr} upstream_rid={rid}' in f.read()
    except OSError:
      return False

  check(wait_for('access log', logged, 5, procs),
        'the edge access log names the correlation id and the run\'s id')
  procs.check_alive()

  # 5. The gateway gone: the edge answers as the gateway does when it cannot
  # serve, a JSON 503 with Retry-After, not nginx's HTML 502.
  procs.stop('gateway')
  out = subprocess.run(
      [args.curl, '--http2', '-k', '-sS', '--max-time', '10', '-D', '-',
       '-H', 'X-Request-Id: edge-down-1', f'{edge}/api/specialists'],
      capture_output=True, timeout=20, check=False).stdout.decode('latin-1')
  head, _, body = out.partition('\r\n\r\n')
  check(re.match(r'HTTP/2 503', head) is not None and
        re.search(r'(?im)^retry-after: \d+', head) is not None and
        re.search(r'(?im)^content-type: application/json', head) is not None,
        'gateway down: the edge answers 503 JSON with Retry-After')
  try:
    err = json.loads(body)
  except ValueError:
    err = {}
  check(err.get('error') == 'unavailable' and
        err.get('request_id') == 'edge-down-1',
        f'its body is the gateway\'s error shape ({body.strip()})')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--bin-dir', default=os.environ.get('AGENTSTREAM_BIN_DIR'))
  parser.add_argument('--artifacts',
                      default=os.environ.get('AGENTSTREAM_E2E_ARTIFACTS'))
  args = parser.parse_args()

  args.nginx = shutil.which('nginx') or (
      '/usr/sbin/nginx' if os.access('/usr/sbin/nginx', os.X_OK) else None)
  if not args.nginx:
    return skip_or_fail('edge_e2e',
                        'nginx is not installed (apt-get install nginx)')
  args.curl = shutil.which('curl')
  if not args.curl:
    return skip_or_fail('edge_e2e', 'curl is not installed')
  features = subprocess.run([args.curl, '-V'], capture_output=True,
                            check=False).stdout.decode()
  if 'HTTP2' not in features:
    return skip_or_fail('edge_e2e', 'this curl has no HTTP/2')
  if not args.bin_dir or not all(
      os.access(os.path.join(args.bin_dir, b), os.X_OK)
      for b in ('gateway', 'orchestrator', 'synthetic')):
    log('FAIL: AGENTSTREAM_BIN_DIR must hold the built gateway, '
        'orchestrator and synthetic')
    return 1

  tmp = tempfile.mkdtemp(prefix='agentstream-edge.')
  # nginx's workers run as `nobody` when this test runs as root.
  os.chmod(tmp, 0o755)
  args.log_dir = os.path.join(tmp, 'logs')
  os.makedirs(args.log_dir)
  procs = Processes(args.log_dir)
  status = 1
  try:
    run(args, tmp, procs)
    status = 0
    log('PASS')
  except Failure as e:
    log(f'FAIL: {e}')
  except Exception as e:  # pylint: disable=broad-except
    log(f'FAIL: {type(e).__name__}: {e}')
  finally:
    if status != 0:
      procs.dump_logs()
    procs.stop_all()
    if status != 0 and args.artifacts:
      dest = os.path.join(args.artifacts, 'edge-logs')
      shutil.rmtree(dest, ignore_errors=True)
      shutil.copytree(args.log_dir, dest)
      for name in ('edge_access.log',):
        if os.path.exists(os.path.join(tmp, name)):
          shutil.copy(os.path.join(tmp, name), dest)
      log(f'logs: {dest}')
    shutil.rmtree(tmp, ignore_errors=True)
  return status


if __name__ == '__main__':
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
  sys.exit(main())
