"""Serving a Specialist (agentstream_specialist.py): the gRPC server, its
Specialist and Health services, flags, signals. What it does for a
specialist is listed in agentstream_specialist.py's docstring; the flags in
`--help` and docs/SPECIALISTS.md ("A specialist in another language:
Python")."""

import argparse
import collections
import os
import signal
import socket
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

import agentstream_specialist as api
from agentstream_specialist import (AnalysisError, CancelToken, UpdateSink,
                                    log)


class _Stream:
  """The updates of one call between the analysis thread and gRPC's: at
  most `capacity` waiting; `put` blocks while full, False once closed."""

  END = object()

  def __init__(self, capacity):
    self._capacity = capacity
    self._items = collections.deque()
    self._cond = threading.Condition()
    self._closed = False
    self._finished = False

  def put(self, item):
    with self._cond:
      while len(self._items) >= self._capacity and not self._closed:
        self._cond.wait()
      if self._closed:
        return False
      self._items.append(item)
      self._cond.notify_all()
      return True

  def finish(self):
    """The analysis is done: the reader gets END after what is queued."""
    with self._cond:
      self._finished = True
      self._cond.notify_all()

  def close(self):
    """The call is gone: writers fail, the reader gets END at once."""
    with self._cond:
      self._closed = True
      self._items.clear()
      self._cond.notify_all()

  def get(self):
    with self._cond:
      while not self._items and not self._closed and not self._finished:
        self._cond.wait()
      if self._closed or not self._items:
        return _Stream.END
      item = self._items.popleft()
      self._cond.notify_all()
      return item


class _Call:
  """One Analyze call in flight (for shutdown)."""

  def __init__(self, request_id):
    self.request_id = request_id
    self.cancel = CancelToken()
    self.done = threading.Event()


class Host:
  """Serves one Specialist: the Specialist service, health, shutdown."""

  def __init__(self, specialist, instance='', max_analyses=32,
               queue_updates=1024):
    self.specialist = specialist
    self.instance = instance
    self.max_analyses = max_analyses
    self.queue_updates = queue_updates
    self._lock = threading.Lock()
    self._calls = set()
    self._stopping = threading.Event()
    self.card = api.pb.specialist_pb2.SpecialistCard(**specialist.card())

  @property
  def stopping(self):
    return self._stopping.is_set()

  def wait_stopping(self, timeout_s):
    """True once shutdown has begun (waits up to `timeout_s` for it)."""
    return self._stopping.wait(timeout_s)

  # --- agentstream.v1.Specialist -------------------------------------------

  def describe(self, request, context):  # pylint: disable=unused-argument
    card = api.pb.specialist_pb2.SpecialistCard()
    card.CopyFrom(self.card)
    card.instance = self.instance
    return card

  def analyze(self, request, context):
    """The Analyze handler: a generator of Updates (gRPC's thread pulls it)."""
    error = _validate(request)
    if error:
      context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
      context.set_details(error)
      return
    call = _Call(request.request_id)
    with self._lock:
      if self._stopping.is_set():
        refusal = (grpc.StatusCode.UNAVAILABLE, 'shutting down')
      elif len(self._calls) >= self.max_analyses:
        refusal = (grpc.StatusCode.RESOURCE_EXHAUSTED,
                   f'at capacity ({self.max_analyses} analyses)')
      else:
        refusal = None
        self._calls.add(call)
    if refusal:
      context.set_code(refusal[0])
      context.set_details(refusal[1])
      return
    stream = _Stream(self.queue_updates)

    def on_terminated():
      # gRPC calls this when the call ends however it ends; before the
      # analysis is done that is the client's cancellation (or a broken
      # connection): trip the token at once and wake both threads.
      if not call.done.is_set():
        call.cancel.cancel('client cancelled')
      stream.close()

    outcome = {}
    sink = UpdateSink(request.request_id, self.card.name, self.instance,
                      stream.put)
    thread = threading.Thread(
        target=self._run, args=(call, request, sink, stream, outcome),
        name=f'analysis-{request.request_id}', daemon=True)
    if not context.add_callback(on_terminated):
      call.cancel.cancel('client cancelled')  # Already gone.
    thread.start()
    try:
      while True:
        item = stream.get()
        if item is _Stream.END:
          break
        yield item
    finally:
      # Also reached when gRPC drops this generator (the call is gone).
      if not call.done.is_set():
        call.cancel.cancel('stream closed')
      stream.close()
    if call.cancel.cancelled():
      if call.cancel.reason == 'shutdown':
        context.set_code(grpc.StatusCode.UNAVAILABLE)
        context.set_details('shut down before the analysis finished')
      else:
        context.set_code(grpc.StatusCode.CANCELLED)
        context.set_details(call.cancel.reason)
    elif 'error' in outcome:
      context.set_code(outcome['error'].code)
      context.set_details(outcome['error'].message)

  def _run(self, call, request, sink, stream, outcome):
    start = time.monotonic()
    log(f'analysis started request_id={request.request_id} '
        f'task_bytes={len(request.task.encode())} '
        f'question_bytes={len(request.question.encode())}')
    result = 'ok'
    try:
      self.specialist.analyze(request, sink, call.cancel)
    except AnalysisError as e:
      outcome['error'] = e
      result = 'failed'
    except Exception as e:  # pylint: disable=broad-except
      # A bug in the analysis: the call ends INTERNAL, the process lives on.
      outcome['error'] = AnalysisError(grpc.StatusCode.INTERNAL,
                                       f'{type(e).__name__}: {e}')
      result = 'failed'
    finally:
      end = time.monotonic()
      # `outcome` is final before `done` is set; the call's status reads it.
      call.done.set()
      stream.finish()
      with self._lock:
        self._calls.discard(call)
    if call.cancel.cancelled():
      stop_ms = (end - call.cancel.cancelled_at) * 1000
      log(f'analysis cancelled request_id={request.request_id} '
          f'reason="{call.cancel.reason}" stop_ms={max(0, stop_ms):.0f}')
    else:
      log(f'analysis ended request_id={request.request_id} outcome={result} '
          f'duration_ms={(end - start) * 1000:.0f} updates={sink.sent}'
          + (f' error="{outcome["error"].message}"' if 'error' in outcome
             else ''))

  def unimplemented(self, method, context):
    """Ends an optional form's call UNIMPLEMENTED, with a log line: the
    orchestrator then uses Analyze for this endpoint (docs/CONTRACT.md)."""
    log(f'{method} answered UNIMPLEMENTED (optional; the client falls back '
        'to Analyze)')
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  f'{self.card.name} implements Analyze only')

  # --- shutdown -------------------------------------------------------------

  def begin_shutdown(self):
    """New analyses are refused from now on; health says NOT_SERVING."""
    self._stopping.set()

  def drain(self, timeout_s):
    """Waits up to `timeout_s` for the analyses in flight, then cancels the
    rest (reason "shutdown") and waits for them to stop. Returns how many
    were cancelled."""
    deadline = time.monotonic() + timeout_s
    with self._lock:
      calls = list(self._calls)
    for call in calls:
      call.done.wait(max(0, deadline - time.monotonic()))
    cancelled = 0
    for call in calls:
      if not call.done.is_set() and call.cancel.cancel('shutdown'):
        cancelled += 1
    for call in calls:
      call.done.wait(1)
    return cancelled

  # --- grpc.health.v1.Health ------------------------------------------------

  def health_status(self, service):
    """SERVING (1) / NOT_SERVING (2) for '' and the Specialist service;
    None for any other name."""
    if service not in ('', api.SERVICE_NAME):
      return None
    return 2 if self._stopping.is_set() else 1


def _validate(request):
  if not request.question and not request.task:
    return 'question and task are both empty'
  for field in ('question', 'task'):
    size = len(getattr(request, field).encode())
    if size > api.MAX_TEXT_BYTES:
      return f'{field} is {size} bytes, over {api.MAX_TEXT_BYTES}'
  return None


def _health_messages():
  """HealthCheckRequest and HealthCheckResponse (grpc/health/v1/health.proto:
  `string service = 1;` and `ServingStatus status = 1;`), built in a pool of
  their own: Debian has no python3 package of grpc_health."""
  f = descriptor_pb2.FileDescriptorProto(
      name='agentstream_python/health.proto', package='grpc.health.v1',
      syntax='proto3')
  req = f.message_type.add(name='HealthCheckRequest')
  req.field.add(name='service', number=1, type=9, label=1)  # string
  resp = f.message_type.add(name='HealthCheckResponse')
  enum = resp.enum_type.add(name='ServingStatus')
  for i, name in enumerate(('UNKNOWN', 'SERVING', 'NOT_SERVING',
                            'SERVICE_UNKNOWN')):
    enum.value.add(name=name, number=i)
  resp.field.add(name='status', number=1, type=14, label=1,  # enum
                 type_name='.grpc.health.v1.HealthCheckResponse.ServingStatus')
  pool = descriptor_pool.DescriptorPool()
  pool.Add(f)
  get = getattr(message_factory, 'GetMessageClass', None)
  if get is None:
    get = message_factory.MessageFactory(pool).GetPrototype
  return (get(pool.FindMessageTypeByName('grpc.health.v1.HealthCheckRequest')),
          get(pool.FindMessageTypeByName('grpc.health.v1.HealthCheckResponse')))


def _health_handler(host):
  request_type, response_type = _health_messages()

  def check(request, context):
    status = host.health_status(request.service)
    if status is None:
      context.abort(grpc.StatusCode.NOT_FOUND, 'unknown service')
    return response_type(status=status)

  def watch(request, context):
    # SERVING until shutdown begins, then NOT_SERVING; ends with the call.
    status = host.health_status(request.service)
    yield response_type(status=3 if status is None else status)
    if status is None:
      return
    # Polled: gRPC Python offers no wait on a call's end besides callbacks,
    # and a health watcher is one call per prober.
    while context.is_active() and not host.wait_stopping(0.5):
      pass
    if context.is_active():
      yield response_type(status=host.health_status(request.service))

  return grpc.method_handlers_generic_handler('grpc.health.v1.Health', {
      'Check': grpc.unary_unary_rpc_method_handler(
          check, request_deserializer=request_type.FromString,
          response_serializer=response_type.SerializeToString),
      'Watch': grpc.unary_stream_rpc_method_handler(
          watch, request_deserializer=request_type.FromString,
          response_serializer=response_type.SerializeToString),
  })


def _servicer(host):
  """The generated servicer: Describe and Analyze; AnalyzeBatched and
  AnalyzeSession answer UNIMPLEMENTED (optional forms, docs/CONTRACT.md)."""

  class Servicer(api.pb.specialist_pb2_grpc.SpecialistServicer):

    def Describe(self, request, context):  # noqa: N802 (gRPC's names)
      return host.describe(request, context)

    def Analyze(self, request, context):  # noqa: N802
      return host.analyze(request, context)

    def AnalyzeBatched(self, request, context):  # noqa: N802
      host.unimplemented('AnalyzeBatched', context)

    def AnalyzeSession(self, request_iterator, context):  # noqa: N802
      host.unimplemented('AnalyzeSession', context)

  return Servicer()


def _env(name, default):
  return os.environ.get(name, default)


def flag_parser(program, description):
  """The flags every Python specialist takes (docs/SPECIALISTS.md)."""
  p = argparse.ArgumentParser(
      prog=program, description=description,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--host', default=_env('AGENTSTREAM_HOST', '127.0.0.1'),
                 help='listen address (default %(default)s; 0.0.0.0 in '
                 'containers) [AGENTSTREAM_HOST]')
  p.add_argument('--port', type=int, default=int(_env('AGENTSTREAM_PORT', 0)),
                 help='gRPC port; 0 = ephemeral (default %(default)s) '
                 '[AGENTSTREAM_PORT]')
  p.add_argument('--port-file', default=_env('AGENTSTREAM_PORT_FILE', ''),
                 help='write the bound port here once listening '
                 '[AGENTSTREAM_PORT_FILE]')
  p.add_argument('--stubs-dir',
                 default=_env('AGENTSTREAM_PY_STUBS', api.default_stubs_dir()),
                 help='the generated agentstream/v1 modules (default '
                 '%(default)s, what `cmake --build build --target '
                 'python_specialist_stubs` writes) [AGENTSTREAM_PY_STUBS]')
  p.add_argument('--drain-timeout-ms', type=int,
                 default=int(_env('AGENTSTREAM_DRAIN_TIMEOUT_MS', 5000)),
                 help='on SIGTERM/SIGINT, how long analyses in flight may '
                 'finish before they are cancelled (default %(default)s) '
                 '[AGENTSTREAM_DRAIN_TIMEOUT_MS]')
  p.add_argument('--max-analyses', type=int,
                 default=int(_env('AGENTSTREAM_MAX_ANALYSES', 32)),
                 help='analyses running at once (a thread each); beyond: '
                 'RESOURCE_EXHAUSTED (default %(default)s) '
                 '[AGENTSTREAM_MAX_ANALYSES]')
  p.add_argument('--stream-queue-updates', type=int,
                 default=int(_env('AGENTSTREAM_STREAM_QUEUE_UPDATES', 1024)),
                 help='per call: updates emitted, not yet taken by gRPC, '
                 'before the analysis is held back (default %(default)s) '
                 '[AGENTSTREAM_STREAM_QUEUE_UPDATES]')
  return p


def _write_port_file(path, port):
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(f'{port}\n')
  os.replace(tmp, path)


def main(make_specialist, argv=None, program=None, description=None,
         add_flags=None):
  """Serves `make_specialist(args)` until SIGTERM/SIGINT; returns the exit
  status: 0 after a clean stop, 2 for bad flags, missing stubs or a port
  that cannot be bound. `add_flags(parser)` adds the specialist's own."""
  parser = flag_parser(program or os.path.basename(sys.argv[0]),
                       description)
  if add_flags:
    add_flags(parser)
  args = parser.parse_args(argv)
  if args.max_analyses < 1 or args.stream_queue_updates < 1:
    parser.error('--max-analyses and --stream-queue-updates must be >= 1')
  try:
    api.load_stubs(args.stubs_dir)
  except ImportError as e:
    log(f'cannot start: {e}')
    return 2
  try:
    specialist = make_specialist(args)
  except ValueError as e:
    log(f'cannot start: {e}')
    return 2
  host = Host(specialist, max_analyses=args.max_analyses,
              queue_updates=args.stream_queue_updates)
  # Describe and health calls need threads too, beside the analyses'.
  server = grpc.server(
      futures.ThreadPoolExecutor(max_workers=args.max_analyses + 8),
      options=[('grpc.so_reuseport', 0)])
  api.pb.specialist_pb2_grpc.add_SpecialistServicer_to_server(
      _servicer(host), server)
  server.add_generic_rpc_handlers((_health_handler(host),))
  address = f'[{args.host}]' if ':' in args.host else args.host
  try:
    port = server.add_insecure_port(f'{address}:{args.port}')
  except RuntimeError as e:  # grpcio >= 1.52 raises instead of returning 0
    log(f'cannot listen on {address}:{args.port}: {e}')
    return 2
  if port == 0:
    log(f'cannot listen on {address}:{args.port}')
    return 2
  host.instance = f'{socket.gethostname()}:{port}'
  stop = threading.Event()
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda signum, frame: stop.set())
  server.start()
  if args.port_file:
    _write_port_file(args.port_file, port)
  log(f'{host.card.name} listening on {address}:{port} '
      f'(instance {host.instance})')
  while not stop.wait(1):
    pass
  log('stopping: new analyses are refused; draining for up to '
      f'{args.drain_timeout_ms} ms')
  host.begin_shutdown()
  cancelled = host.drain(args.drain_timeout_ms / 1000)
  # The calls cancelled by the drain have ended with their statuses; a
  # second for gRPC to send them before the connections close.
  server.stop(grace=1).wait(5)
  log(f'stopped ({cancelled} analyses cancelled at shutdown)')
  return 0
