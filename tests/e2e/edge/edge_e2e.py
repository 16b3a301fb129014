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
  - X-Request-Id reaches the gateway (the run carries the client's id), and
    the edge makes a valid one when the client sends none or a bad one;
  - Last-Event-ID reaches the gateway: a stream cut in the middle and resumed
    through the edge continues right after the given seq, nothing lost,
    nothing repeated;
  - with the gateway gone, the edge answers a JSON 503 with Retry-After.

Every wait has a deadline; every process is stopped by its PID (and dies with
this script). Exit status: 0 pass, 1 failure, 77 skipped (no nginx or no
HTTP/2 curl, outside CI; under CI that is a failure).
"""

import argparse
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
ENTRYPOINT = os.path.join(ROOT, 'deploy', 'nginx', 'entrypoint.sh')

# The Synthetic run: COUNT partial results at RATE a second (~5 s).
COUNT = 50
RATE = 10
HEARTBEAT_MS = 400


def log(msg):
  print(f'[edge_e2e] {msg}', flush=True)


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


def free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class Processes:
  """Processes this test started; stopped by PID, last started first."""

  def __init__(self, log_dir):
    self.log_dir = log_dir
    self.procs = []  # (name, Popen)

  def start(self, name, argv, env=None):
    out = open(os.path.join(self.log_dir, f'{name}.log'), 'wb')
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env,
                            preexec_fn=die_with_parent)
    out.close()
    self.procs.append((name, proc))
    log(f'started {name} (pid {proc.pid})')
    return proc

  def stop(self, name):
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
    for name, proc in reversed(self.procs):
      if proc.poll() is None:
        # nginx: SIGTERM is its fast shutdown (workers included).
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, proc in reversed(self.procs):
      try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
      except subprocess.TimeoutExpired:
        log(f'{name} (pid {proc.pid}) did not stop; killing it')
        proc.kill()
        proc.wait(timeout=5)
    self.procs = []

  def dump_logs(self):
    for name, _ in self.procs or []:
      path = os.path.join(self.log_dir, f'{name}.log')
      try:
        with open(path, 'rb') as f:
          tail = f.read()[-3000:].decode('utf-8', 'replace')
      except OSError:
        continue
      log(f'--- {name}.log (tail) ---\n{tail}')


def wait_for(what, predicate, timeout, procs):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    procs.check_alive()
    value = predicate()
    if value:
      return value
    time.sleep(0.1)
  raise Failure(f'{what}: not within {timeout}s')


def read_port(path):
  try:
    with open(path) as f:
      text = f.read().strip()
    return int(text) if text else None
  except (OSError, ValueError):
    return None


def http_ok(url):
  try:
    with urllib.request.urlopen(url, timeout=2) as r:
      return r.status == 200 and r.read()
  except Exception:  # pylint: disable=broad-except
    return None


class Stream:
  """One `curl --http2 -k -N` SSE request, read line by line with arrival
  times (monotonic, relative to the request's start)."""

  def __init__(self, curl, url, headers, header_file):
    self.header_file = header_file
    argv = [curl, '--http2', '-k', '-N', '-sS', '--max-time', '60',
            '-D', header_file]
    for h in headers:
      argv += ['-H', h]
    argv.append(url)
    self.t0 = time.monotonic()
    self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 preexec_fn=die_with_parent)
    self.lines = []  # (t, line)
    self.events = []  # (t, dict(id, event, data))
    self.heartbeats = []  # t
    self.cond = threading.Condition()
    self.eof = False
    self.thread = threading.Thread(target=self._read, daemon=True)
    self.thread.start()

  def _read(self):
    cur = {}
    for raw in self.proc.stdout:
      t = time.monotonic() - self.t0
      line = raw.decode('utf-8', 'replace').rstrip('\r\n')
      with self.cond:
        self.lines.append((t, line))
        if line == '':
          if 'data' in cur or 'event' in cur:
            self.events.append((t, cur))
          cur = {}
        elif line.startswith(':'):
          if 'heartbeat' in line:
            self.heartbeats.append(t)
        else:
          field, _, value = line.partition(':')
          value = value[1:] if value.startswith(' ') else value
          if field == 'data':
            cur['data'] = cur['data'] + '\n' + value if 'data' in cur else value
          elif field in ('id', 'event'):
            cur[field] = value
        self.cond.notify_all()
    with self.cond:
      self.eof = True
      self.cond.notify_all()

  def wait_until(self, predicate, timeout):
    deadline = time.monotonic() + timeout
    with self.cond:
      while not predicate(self):
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
          return predicate(self)
        self.cond.wait(left)
      return True

  def finish(self, timeout):
    if not self.wait_until(lambda s: s.eof, timeout):
      self.cut()
      raise Failure(f'stream did not end within {timeout}s')
    self.proc.wait(timeout=5)
    return self.proc.returncode

  def cut(self):
    if self.proc.poll() is None:
      self.proc.kill()
    self.proc.wait(timeout=5)
    self.thread.join(timeout=5)

  def headers(self):
    try:
      with open(self.header_file, 'rb') as f:
        text = f.read().decode('latin-1')
    except OSError:
      return None, {}
    # The last response's block (curl writes one per response).
    blocks = [b for b in re.split(r'\r?\n\r?\n', text) if b.strip()]
    if not blocks:
      return None, {}
    lines = blocks[-1].splitlines()
    headers = {}
    for line in lines[1:]:
      name, _, value = line.partition(':')
      headers[name.strip().lower()] = value.strip()
    return lines[0].strip(), headers

  def payloads(self):
    out = []
    for t, ev in self.events:
      try:
        data = json.loads(ev.get('data', ''))
      except ValueError:
        data = {}
      out.append((t, ev, data))
    return out


def seq_of(event_id, rid):
  prefix = rid + ':'
  if not event_id.startswith(prefix):
    raise Failure(f'event id {event_id!r} does not belong to run {rid}')
  return int(event_id[len(prefix):])


def curl_once(curl, url, headers=()):
  argv = [curl, '--http2', '-k', '-sS', '--max-time', '10', '-D', '-',
          '-o', '/dev/null', '-w', 'HTTPVERSION=%{http_version}\n']
  for h in headers:
    argv += ['-H', h]
  argv.append(url)
  out = subprocess.run(argv, capture_output=True, timeout=20, check=False)
  text = out.stdout.decode('latin-1')
  version = re.search(r'HTTPVERSION=(\S+)', text)
  rid = re.search(r'(?im)^x-request-id:\s*(\S+)', text)
  status = re.search(r'(?m)^HTTP/\S+\s+(\d+)', text)
  return (version.group(1) if version else None,
          int(status.group(1)) if status else None,
          rid.group(1) if rid else None)


def skip_or_fail(msg):
  if os.environ.get('CI'):
    log(f'FAIL: {msg} (CI={os.environ["CI"]})')
    return 1
  log(f'SKIP: {msg}')
  return 77


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
  rid = 'edge-run-' + secrets.token_hex(6)
  s = Stream(args.curl, url, [f'X-Request-Id: {rid}', 'Accept-Encoding: gzip'],
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
  check(headers.get('x-request-id') == rid, 'the response carries our id')
  events = s.payloads()
  check(events and events[0][2].get('type') == 'connected' and
        events[0][2].get('request_id') == rid,
        'the run was started with the X-Request-Id sent through the edge')
  check(all(ev.get('id', '').startswith(rid + ':') for _, ev, _ in events
            if 'id' in ev), 'every event id is <our id>:<seq>')
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
  rid2 = 'edge-resume-' + secrets.token_hex(6)
  s1 = Stream(args.curl, url, [f'X-Request-Id: {rid2}'],
              os.path.join(tmp, 'stream2.headers'))
  got = s1.wait_until(
      lambda st: sum(1 for _, ev in st.events
                     if '"partial_result"' in ev.get('data', '')) >= 15, 20)
  s1.cut()
  check(got, 'the second run streamed 15 partial results before the cut')
  ids1 = [ev['id'] for _, ev in s1.events if 'id' in ev]
  last = ids1[-1]
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

  # 4. The edge's access log names the run with the gateway's id.
  def logged():
    try:
      with open(os.path.join(tmp, 'edge_access.log')) as f:
        return f'rid={rid} upstream_rid={rid}' in f.read()
    except OSError:
      return False

  check(wait_for('access log', logged, 5, procs),
        'the edge access log names the run by the same id as the gateway')
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
    return skip_or_fail('nginx is not installed (apt-get install nginx)')
  args.curl = shutil.which('curl')
  if not args.curl:
    return skip_or_fail('curl is not installed')
  features = subprocess.run([args.curl, '-V'], capture_output=True,
                            check=False).stdout.decode()
  if 'HTTP2' not in features:
    return skip_or_fail('this curl has no HTTP/2')
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
