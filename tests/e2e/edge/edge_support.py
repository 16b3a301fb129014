"""Helpers for edge_e2e.py: processes stopped by PID, deadlines, an SSE
reader over `curl --http2 -N`. (Skip or fail: tests/e2e/ci_policy.py.)
The process helpers are tests/e2e/process_support.py's."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))  # tests/e2e
from process_support import (Failure, Processes, check, die_with_parent,  # noqa: E402,F401 pylint: disable=wrong-import-position,unused-import
                             free_port, log, read_port, wait_for)


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

