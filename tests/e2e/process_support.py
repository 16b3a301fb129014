"""Helpers for the e2e scripts that start the real binaries themselves
(python_specialist/, dialects/): processes stopped by PID, bounded waits,
a real redis-server (start_redis), and one SSE response of the gateway read
event by event over http.client. Stdlib only."""

import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

# A read on a stream that takes longer is a failure (the gateway's
# heartbeat comes every 15 s by default).
READ_TIMEOUT_S = 30


def log(msg):
  print(f'[{os.path.basename(sys.argv[0])}] {msg}', flush=True)


class Failure(Exception):
  pass


def check(cond, msg):
  if not cond:
    raise Failure(msg)
  log(f'ok: {msg}')


def die_with_parent():
  # The child gets SIGTERM when this script ends, however it ends.
  try:
    libc = ctypes.CDLL('libc.so.6', use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


class Processes:
  """Processes this test started; stopped by PID, last started first."""

  def __init__(self, log_dir):
    self.log_dir = log_dir
    self.procs = []  # (name, Popen)

  def path(self, name):
    return os.path.join(self.log_dir, f'{name}.log')

  def start(self, name, argv, env=None):
    with open(self.path(name), 'wb') as out:
      proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=env,
                              preexec_fn=die_with_parent)
    self.procs.append((name, proc))
    log(f'started {name} (pid {proc.pid})')
    return proc

  def log_text(self, name):
    try:
      with open(self.path(name), 'rb') as f:
        return f.read().decode('utf-8', 'replace')
    except OSError:
      return ''

  def stop(self, name):
    """SIGTERM to `name` (SIGKILL after 15 s); it is then forgotten."""
    for n, proc in self.procs:
      if n == name and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
          proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
          proc.kill()
          proc.wait(timeout=5)
    self.procs = [(n, p) for n, p in self.procs if n != name]

  def check_alive(self):
    for name, proc in self.procs:
      if proc.poll() is not None:
        raise Failure(f'{name} exited with {proc.returncode}')

  def stop_all(self):
    for _, proc in reversed(self.procs):
      if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, proc in reversed(self.procs):
      try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
      except subprocess.TimeoutExpired:
        log(f'{name} (pid {proc.pid}) did not stop; killing it')
        proc.kill()
        proc.wait(timeout=5)
      if proc.returncode != 0:
        log(f'{name} exited with {proc.returncode}')
    self.procs = []

  def dump_logs(self):
    for name, _ in self.procs:
      log(f'--- {name}.log (tail) ---\n{self.log_text(name)[-3000:]}')


def wait_for(what, predicate, timeout, procs):
  """Polls predicate() until it is truthy (returned); bounded, and failing
  at once when a process of ours died."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    procs.check_alive()
    value = predicate()
    if value:
      return value
    time.sleep(0.05)
  raise Failure(f'{what}: not within {timeout} s')


def free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


REDIS_SERVER = '/usr/bin/redis-server'


def redis_answers_ping(port):
  """True when 127.0.0.1:port answers PING as a ready redis-server does:
  +PONG, or -NOAUTH from one with a password (not -LOADING, while it
  replays its AOF)."""
  try:
    with socket.create_connection(('127.0.0.1', port), timeout=0.5) as s:
      s.sendall(b'PING\r\n')
      reply = b''
      while b'\r\n' not in reply:
        chunk = s.recv(256)
        if not chunk:
          break
        reply += chunk
  except OSError:
    return False
  return reply.startswith(b'+PONG') or reply.startswith(b'-NOAUTH')


def start_redis(procs, data_dir, port=None, appendonly=True, name='redis',
                extra_args=()):
  """A real redis-server on 127.0.0.1 (the twin of
  tests/testing/redis_server.h): data in `data_dir`, no RDB snapshots, the
  AOF on unless appendonly=False, added to `procs` as `name` (stopped by PID
  with the rest, or alone with procs.stop(name)). Waits (10 s) until it
  answers PING; returns its port (redis_url(port) for --run-store).
  Restart: procs.stop(name), then start_redis again with the same data_dir
  and port; the AOF is replayed. With port=None a free port is chosen (and
  another if the server could not bind it)."""
  attempts = 3 if port is None else 1
  for attempt in range(attempts):
    p = port if port is not None else free_port()
    argv = [REDIS_SERVER, '--bind', '127.0.0.1', '--port', str(p),
            '--dir', data_dir, '--save', '',
            '--appendonly', 'yes' if appendonly else 'no',
            '--appendfsync', 'everysec', '--daemonize', 'no',
            '--protected-mode', 'yes', *extra_args]
    proc = procs.start(name, argv)
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
      # Its own log says so too: a PING answer alone may come from another
      # server on that port.
      if ('Ready to accept connections' in procs.log_text(name) and
          redis_answers_ping(p)):
        return p
      time.sleep(0.02)
    text = procs.log_text(name)
    procs.stop(name)
    if proc.returncode is None or attempt == attempts - 1:
      raise Failure(f'{name}: redis-server on port {p} did not answer PING '
                    f'(exit {proc.returncode}); its log:\n{text[-2000:]}')
  raise Failure(f'{name}: no redis-server started')  # not reached


def redis_url(port):
  return f'redis://127.0.0.1:{port}'


def read_port(path):
  try:
    with open(path) as f:
      text = f.read().strip()
    return int(text) if text else None
  except (OSError, ValueError):
    return None


class Stream:
  """POST /api/chat/stream with a JSON body, read event by event."""

  def __init__(self, port, body):
    self.conn = http.client.HTTPConnection('127.0.0.1', port,
                                           timeout=READ_TIMEOUT_S)
    self.conn.request('POST', '/api/chat/stream', body=json.dumps(body),
                      headers={'Accept': 'text/event-stream',
                               'Content-Type': 'application/json'})
    self.resp = self.conn.getresponse()
    self.events = []  # dicts: id, event, json
    self.ended = None
    if self.resp.status != 200:
      raise Failure(f'POST /api/chat/stream answered {self.resp.status}: '
                    f'{self.resp.read()[:300]!r}')
    # docs/GATEWAY.md: the run's id is the response's X-Request-Id, and the
    # connected event's request_id.
    self.run_id = self.resp.getheader('X-Request-Id', '')
    self.read_until('the connected event', lambda s: s.events, 30)
    first = self.events[0]
    check(first.get('event') == 'connected' and
          first['json'].get('request_id') == self.run_id and
          self.run_id.startswith('run_'),
          f'a new run {self.run_id}: X-Request-Id and connected agree')

  def next_event(self):
    """The next event, or None at the end of the stream (self.ended)."""
    cur = {}
    while True:
      try:
        raw = self.resp.readline()
      except (http.client.HTTPException, OSError) as e:
        self.ended = f'broken: {type(e).__name__}: {e}'
        return None
      if not raw:
        self.ended = 'eof'
        return None
      line = raw.decode('utf-8', 'replace').rstrip('\r\n')
      if line == '':
        if 'data' in cur or 'event' in cur:
          try:
            cur['json'] = json.loads(cur.get('data', ''))
          except ValueError:
            cur['json'] = {}
          self.events.append(cur)
          return cur
        cur = {}
      elif not line.startswith(':'):
        field, _, value = line.partition(':')
        value = value[1:] if value.startswith(' ') else value
        if field == 'data':
          cur['data'] = cur['data'] + '\n' + value if 'data' in cur else value
        elif field in ('id', 'event'):
          cur[field] = value

  def read_until(self, what, pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred(self):
      if time.monotonic() > deadline:
        raise Failure(f'{what}: not within {timeout} s ({self.summary()})')
      if self.next_event() is None:
        if pred(self):
          break
        raise Failure(f'{what}: the stream ended ({self.ended}) first '
                      f'({self.summary()})')

  def read_to_end(self, timeout):
    deadline = time.monotonic() + timeout
    while self.next_event() is not None:
      if time.monotonic() > deadline:
        raise Failure(f'the stream did not end within {timeout} s '
                      f'({self.summary()})')
    self.conn.close()

  def updates(self):
    """The run's updates (`message` events), in the order received."""
    return [e['json'] for e in self.events if e.get('event') == 'message']

  def of_type(self, kind):
    return [u for u in self.updates() if u.get('type') == kind]

  def named(self, name):
    return [e['json'] for e in self.events if e.get('event') == name]

  def summary(self):
    kinds = {}
    for e in self.events:
      k = e.get('event', 'message')
      if k == 'message':
        k = e['json'].get('type', '?')
      kinds[k] = kinds.get(k, 0) + 1
    return f'events {kinds}, ended {self.ended}'
