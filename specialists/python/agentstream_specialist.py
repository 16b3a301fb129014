"""Hosting for an agentstream specialist written in Python.

The contract is proto/agentstream/v1/specialist.proto (docs/CONTRACT.md); this
module is the Python counterpart of the C++ SDK's hosting
(docs/SPECIALISTS.md, "A specialist in another language: Python"), on
Debian's python3-grpcio and stubs generated from our proto by protoc
(the CMake target `python_specialist_stubs`, into the build tree).

A specialist subclasses `Specialist` (its card, and `analyze(request, sink,
cancel)`) and calls `main(...)`; this module holds what an analysis sees
(`Specialist`, `UpdateSink`, `CancelToken`, `AnalysisError`), and
agentstream_host.py the serving, which:

  - serves `Describe` (the card, with `instance` = hostname:port) and
    `Analyze` (the analysis on a thread of its own; its updates stream out
    through a bounded queue as it emits them); `AnalyzeBatched` and
    `AnalyzeSession` answer UNIMPLEMENTED, and the orchestrator then calls
    `Analyze` (docs/CONTRACT.md, "Batched streams");
  - validates requests as the C++ SDK does (question and task both empty,
    or either over 16 KiB: INVALID_ARGUMENT before `analyze` runs);
  - trips the analysis's `CancelToken` from gRPC's termination callback the
    moment the client cancels (the orchestrator does on DELETE), so an
    analysis that waits on the token instead of sleeping stops at once;
  - serves grpc.health.v1.Health (Check and Watch: SERVING, NOT_SERVING once
    stopping);
  - on SIGTERM/SIGINT refuses new analyses (UNAVAILABLE), lets those in
    flight finish for up to --drain-timeout-ms, cancels the rest (their
    calls end UNAVAILABLE "shut down before the analysis finished") and
    exits 0;
  - logs one line on stderr when an analysis starts, ends and is cancelled
    (`analysis cancelled request_id=... reason="client cancelled"
    stop_ms=N`), never the request's text.

The generated modules are imported by `load_stubs(directory)` (the flag
--stubs-dir); importing this module needs only the standard library, and
grpc once something is served.
"""

import collections
import importlib
import os
import sys
import threading
import time

# As the C++ SDK (docs/SPECIALISTS.md, "Validation").
MAX_TEXT_BYTES = 16 * 1024
SERVICE_NAME = 'agentstream.v1.Specialist'

# The generated modules, once load_stubs() has run: update_pb2,
# specialist_pb2, specialist_pb2_grpc.
pb = None


def default_stubs_dir():
  """Where the CMake target writes the stubs: build/specialists/python/gen
  of the source tree this file is in."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  return os.path.join(root, 'build', 'specialists', 'python', 'gen')


def load_stubs(directory):
  """Imports agentstream.v1's generated modules from `directory` (the
  directory holding agentstream/v1/*_pb2.py). Raises ImportError naming how
  to make them when they are missing."""
  global pb  # pylint: disable=global-statement
  if pb is not None:
    return pb
  if not os.path.isfile(os.path.join(directory, 'agentstream', 'v1',
                                     'specialist_pb2_grpc.py')):
    raise ImportError(
        f'no generated stubs in {directory}: build them with `cmake --build '
        'build --target python_specialist_stubs` (docs/SPECIALISTS.md) or '
        'pass --stubs-dir')
  sys.path.insert(0, directory)
  modules = {}
  for name in ('update_pb2', 'specialist_pb2', 'specialist_pb2_grpc'):
    modules[name] = importlib.import_module(f'agentstream.v1.{name}')
  pb = collections.namedtuple('Stubs', modules)(**modules)
  return pb


def log(message):
  print(f'{time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())} '
        f'{message}', file=sys.stderr, flush=True)


class AnalysisError(Exception):
  """Raised by `analyze` to end the call with `code` (a grpc.StatusCode);
  the orchestrator counts the specialist as failed."""

  def __init__(self, code, message):
    super().__init__(message)
    self.code = code
    self.message = message


class CancelToken:
  """Tripped once, from any thread: by the client's cancellation, a stream
  that is gone, or shutdown. An analysis waits on it (`wait_for`) instead
  of sleeping, so that it stops within milliseconds."""

  def __init__(self, clock=time.monotonic):
    self._clock = clock
    self._event = threading.Event()
    self._lock = threading.Lock()
    self._reason = None
    self._at = None

  def cancel(self, reason):
    """Trips the token; the first reason wins. True if this call tripped it."""
    with self._lock:
      if self._event.is_set():
        return False
      self._reason = reason
      self._at = self._clock()
      self._event.set()
      return True

  def cancelled(self):
    return self._event.is_set()

  def wait_for(self, seconds):
    """Waits up to `seconds`; True (at once) when cancelled."""
    return self._event.wait(seconds)

  @property
  def reason(self):
    return self._reason

  @property
  def cancelled_at(self):
    """The clock's reading when tripped, or None."""
    return self._at

  def sqlite_progress_handler(self):
    """For sqlite3.Connection.set_progress_handler(handler, n): a running
    statement is interrupted (sqlite3.OperationalError) once cancelled."""
    return lambda: 1 if self._event.is_set() else 0


class UpdateSink:
  """Where an analysis emits its updates. Stamps each with the request id,
  emitted_at (ns since the epoch), the specialist's name and instance (seq
  stays 0: the orchestrator assigns it). Progress is clamped to 0..100 and
  never goes backwards. Every method returns False once the stream is gone
  (nothing more is sent then). `emit(update) -> bool` delivers one update;
  it may block while the stream's queue is full. Thread-safe."""

  def __init__(self, request_id, specialist, instance, emit,
               clock_ns=time.time_ns):
    self._request_id = request_id
    self._specialist = specialist
    self._instance = instance
    self._emit = emit
    self._clock_ns = clock_ns
    self._lock = threading.Lock()
    self._progress = 0
    self.sent = 0

  def send(self, update):
    update.request_id = self._request_id
    update.seq = 0
    update.emitted_at = self._clock_ns()
    update.specialist = self._specialist
    update.instance = self._instance
    if not self._emit(update):
      return False
    with self._lock:
      self.sent += 1
    return True

  def progress(self, percent, current_action=''):
    with self._lock:
      percent = max(self._progress, min(100, max(0, int(percent))))
      self._progress = percent
    update = pb.update_pb2.Update()
    update.progress.progress = percent
    update.progress.current_action = current_action
    return self.send(update)

  def thinking(self, thought, visible=True):
    update = pb.update_pb2.Update()
    update.thinking.agent = self._specialist
    update.thinking.thought = thought
    update.thinking.visible = visible
    return self.send(update)

  def tool_call(self, tool, parameters):
    update = pb.update_pb2.Update()
    update.tool_call.tool = tool
    update.tool_call.parameters.update(parameters)
    return self.send(update)

  def partial_result(self, result):
    """`result`: a dict of JSON values (numbers go out as doubles)."""
    update = pb.update_pb2.Update()
    update.partial_result.result.update(result)
    return self.send(update)


class Specialist:
  """What a specialist implements. `analyze` runs on a thread of its own per
  call, many at once: keep it free of shared mutable state."""

  def card(self):
    """A dict of SpecialistCard fields (name, display_name, icon,
    description, skills, keywords, version, explicit_only)."""
    raise NotImplementedError

  def analyze(self, request, sink, cancel):
    """Emits through `sink`; returns when done (the call ends OK), raises
    AnalysisError to end it with that status. Once `cancel` is tripped it
    must return promptly (within 100 ms); what it returns then is ignored."""
    raise NotImplementedError


def struct_to_dict(struct):
  """A google.protobuf.Struct as plain Python values."""
  return {k: _value(v) for k, v in struct.fields.items()}


def _value(v):
  kind = v.WhichOneof('kind')
  if kind == 'struct_value':
    return struct_to_dict(v.struct_value)
  if kind == 'list_value':
    return [_value(x) for x in v.list_value.values]
  if kind in (None, 'null_value'):
    return None
  return getattr(v, kind)



def main(make_specialist, argv=None, **kwargs):
  """Parses the flags, serves the specialist until SIGTERM/SIGINT, returns
  the exit status (agentstream_host.main says more)."""
  import agentstream_host  # pylint: disable=import-outside-toplevel
  return agentstream_host.main(make_specialist, argv, **kwargs)
