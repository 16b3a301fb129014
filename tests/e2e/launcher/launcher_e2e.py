#!/usr/bin/python3
"""The local launcher supervises (ctest: launcher_e2e), stdlib only.

Starts deploy/local/launch.sh (what ./run.sh execs) with the built binaries
(AGENTSTREAM_BIN_DIR) on free loopback ports and a temporary data directory,
then, against the real processes:

  gateway       a long Synthetic run streams through the gateway; the gateway
                is killed (SIGKILL, by its PID). The launcher's log names the
                signal, the launcher restarts it on the same port, the client
                resumes with Last-Event-ID on the new gateway and gets the rest
                of the run (the run lives in the orchestrator): seq 1..N once
                each, every partial result, `complete` ok, `done` complete.
                No other process was restarted (same PIDs, same start times).
  orchestrator  another long run streams; the orchestrator is killed. The
                client gets the gateway's explicit ending for a lost upstream
                (error `unavailable`, retryable, no `done`); the launcher
                restarts the orchestrator; the gateway (same PID) reconnects by
                itself; a resume of the lost run is answered with a `gap`
                error and `done` failed (the run died with its orchestrator,
                by design); a new run through the gateway completes. Nothing
                else restarted.
  backoff       the gateway is killed again right after each restart: the
                launcher's waits double (its log says so, and calls it a crash
                loop), and each restart comes no sooner than announced.
  shutdown      the gateway is killed once more and, while its restart is
                pending, the launcher gets SIGINT: it exits 130 within the
                deadline, every process it started is gone, and the gateway was
                not restarted. Then the launcher is started again on the same
                data directory and stopped with SIGTERM: exit 143, every
                process gone.

Every wait has a deadline; the test ends only processes it started, by PID
(the launcher gets SIGTERM if this script dies). Exit status: 0 pass,
1 failure, 77 skipped (bash or curl missing, outside CI; under CI a failure).
"""

import argparse
import ctypes
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from e2e_support import CheckFailed, http_get, wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
LAUNCH = os.path.join(ROOT, 'deploy', 'local', 'launch.sh')
BINARIES = ('gateway', 'orchestrator', 'data_analyst', 'risk_analyst',
            'compliance_expert', 'synthetic')
SPECIALISTS = ('data_analyst', 'risk_analyst', 'compliance_expert',
               'synthetic')

# Synthetic runs (docs/SPECIALISTS.md: options count, size, rate). A runs
# ~8 s and the gateway is killed after ~1 s of it; B would run 30 s and dies
# with the orchestrator after ~0.5 s; C is short.
RUN_A = {'count': 80, 'rate': 10, 'size': 16}
RUN_B = {'count': 300, 'rate': 10, 'size': 16}
RUN_C = {'count': 20, 'rate': 0, 'size': 16}
# The launcher's backoff (deploy/local/launch.sh: RESTART_FIRST_MS).
RESTART_FIRST_S = 0.5
# A read on a stream that takes longer is a failure (Synthetic sends 10 a
# second; the gateway's heartbeat comes every 15 s).
READ_TIMEOUT_S = 30
# How long SIGINT/SIGTERM may take to stop everything (the launcher's own
# grace is 5 s before SIGKILL).
STOP_DEADLINE_S = 15


def log(msg):
    print(f'[launcher_e2e] {msg}', flush=True)


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)
    log(f'ok: {msg}')


def skip_or_fail(msg):
    if os.environ.get('CI'):
        log(f'FAIL: {msg} (CI={os.environ["CI"]})')
        return 1
    log(f'SKIP: {msg}')
    return 77


def free_port_runs(*lengths):
    """A base port per length with that many consecutive free ports after
    it, no two runs overlapping."""
    taken = set()

    def free(port):
        if port in taken or port > 65535:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                return False
        return True

    bases = []
    for n in lengths:
        for _ in range(500):
            base = random.randint(20000, 60000)
            if all(free(base + i) for i in range(n)):
                taken.update(range(base, base + n))
                bases.append(base)
                break
        else:
            raise CheckFailed(f'no {n} consecutive free ports')
    return bases


# ---------------------------------------------------------------------------
# Processes: identified by PID and start time, so that a reused PID is never
# taken for the process we started.

def start_time(pid):
    """The process's start time (clock ticks since boot), None if gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(')') + 2:].split()
    if fields[0] == 'Z':  # exited, not yet reaped: gone for our purposes
        return None
    return int(fields[19])


def read_pids(data_dir):
    """{name: (pid, start time)} from DATA_DIR/pids ("PID NAME" lines)."""
    out = {}
    try:
        with open(os.path.join(data_dir, 'pids')) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit():
                    pid = int(parts[0])
                    out[parts[1]] = (pid, start_time(pid))
    except FileNotFoundError:
        pass
    return out


def alive(ident):
    pid, started = ident
    return started is not None and start_time(pid) == started


def kill9(name, ident):
    os.kill(ident[0], signal.SIGKILL)
    log(f'{name} pid {ident[0]} killed (SIGKILL)')


def die_with_parent():
    # The launcher gets SIGTERM when this script ends, however it ends (it
    # then stops what it started). SIGINT as the default: a launcher started
    # with SIGINT ignored could not trap it (bash keeps signals ignored at
    # entry ignored), and this test sends it one.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Launcher:
    """deploy/local/launch.sh as a child of this script."""

    def __init__(self, bin_dir, data_dir, ports, out_path):
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.gw, self.orch, self.spec, self.metrics = ports
        self.out_path = out_path
        self.proc = None
        self.url = f'http://127.0.0.1:{self.gw}/'
        self.seen = {}  # every (pid, start time) the pids file ever listed

    def start(self, ready_s):
        offset = (os.path.getsize(self.out_path)
                  if os.path.exists(self.out_path) else 0)
        with open(self.out_path, 'ab') as out:
            self.proc = subprocess.Popen(
                ['bash', LAUNCH, '--bin-dir', self.bin_dir, '--data-dir',
                 self.data_dir, '--gateway-port', str(self.gw),
                 '--orchestrator-port', str(self.orch),
                 '--specialist-base-port', str(self.spec),
                 '--metrics-base-port', str(self.metrics)],
                stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        log(f'launcher started: pid {self.proc.pid}, gateway :{self.gw}, '
            f'orchestrator :{self.orch}, specialists :{self.spec}+, '
            f'metrics :{self.metrics}+')

        def running():
            if self.proc.poll() is not None:
                raise CheckFailed(f'the launcher exited with '
                                  f'{self.proc.returncode} before the system '
                                  'was up')
            with open(self.out_path, 'rb') as f:
                f.seek(offset)
                return b'agentstream is running: ' in f.read()

        wait_for('the launcher to say the system runs', running, ready_s)
        pids = self.pids()
        check(sorted(pids) == sorted(BINARIES) and
              all(alive(p) for p in pids.values()),
              f'the launcher runs all six processes: {self.describe(pids)}')
        return pids

    def pids(self):
        pids = read_pids(self.data_dir)
        for ident in pids.values():
            if ident[1] is not None:
                self.seen[ident] = True
        return pids

    @staticmethod
    def describe(pids):
        return ', '.join(f'{n}={p[0]}' for n, p in sorted(pids.items()))

    def log_text(self):
        try:
            with open(os.path.join(self.data_dir, 'logs', 'launch.log'),
                      encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def wait_log(self, what, pattern, timeout):
        """Waits for a line of the launcher's log matching pattern."""
        rx = re.compile(pattern)

        def found():
            return rx.search(self.log_text())

        return wait_for(f'the launcher to log {what}', found, timeout,
                        interval=0.05)

    def wait_restarted(self, name, old, timeout=30):
        """Waits until the pids file lists a new, live `name`."""
        def new():
            ident = self.pids().get(name)
            return ident if ident and ident != old and alive(ident) else None

        return wait_for(f'{name} to be restarted', new, timeout,
                        interval=0.02)

    def wait_ready(self, timeout=30):
        wait_for(f'{self.url}readyz to answer 200',
                 lambda: http_get(self.url + 'readyz', timeout=2)[0] == 200,
                 timeout, interval=0.1)

    def wait_synthetic(self, timeout=30):
        def available():
            status, body = http_get(self.url + 'api/specialists', timeout=2)
            if status != 200:
                return False
            d = json.loads(body)
            items = d.get('specialists', d) if isinstance(d, dict) else d
            return any(s.get('name') == 'Synthetic' and s.get('available')
                       for s in items)

        wait_for('Synthetic to be available through the gateway', available,
                 timeout, interval=0.1)

    def signal_and_wait(self, sig, timeout):
        """Sends sig to the launcher; its exit status, or None if it is
        still running after timeout."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def cleanup(self):
        """Stops the launcher by PID and anything it left behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.pids()
        for ident in self.seen:
            if alive(ident):
                log(f'pid {ident[0]} outlived the launcher; killing it')
                os.kill(ident[0], signal.SIGKILL)


# ---------------------------------------------------------------------------
# SSE over http.client

class Stream:
    """One SSE response, read event by event."""

    def __init__(self, port, method, path, body=None, headers=None):
        self.conn = http.client.HTTPConnection('127.0.0.1', port,
                                               timeout=READ_TIMEOUT_S)
        hdrs = {'Accept': 'text/event-stream'}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs['Content-Type'] = 'application/json'
        hdrs.update(headers or {})
        self.conn.request(method, path, body=data, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.events = []  # dicts: id, event, data (parsed JSON), raw
        self.ended = None  # 'eof' or 'broken: ...'

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
            elif line.startswith(':'):
                continue
            else:
                field, _, value = line.partition(':')
                value = value[1:] if value.startswith(' ') else value
                if field == 'data':
                    cur['data'] = (cur['data'] + '\n' + value
                                   if 'data' in cur else value)
                elif field in ('id', 'event'):
                    cur[field] = value

    def read_until(self, what, pred, timeout):
        """Reads events until pred(self) holds; bounded."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline:
                raise CheckFailed(f'{what}: not within {timeout} s '
                                  f'({self.summary()})')
            if self.next_event() is None:
                if pred(self):
                    break
                raise CheckFailed(f'{what}: the stream ended ({self.ended}) '
                                  f'first ({self.summary()})')

    def read_to_end(self, timeout):
        deadline = time.monotonic() + timeout
        while self.next_event() is not None:
            if time.monotonic() > deadline:
                raise CheckFailed(f'the stream did not end within {timeout} s '
                                  f'({self.summary()})')
        self.close()

    def close(self):
        self.conn.close()

    # What was read.
    def updates(self):
        """The run's updates: `message` events with a seq."""
        return [e for e in self.events if e.get('event') == 'message']

    def of_type(self, kind):
        return [e['json'] for e in self.updates()
                if e['json'].get('type') == kind]

    def named(self, name):
        return [e['json'] for e in self.events if e.get('event') == name]

    def seqs(self, rid):
        out = []
        for e in self.updates():
            prefix = rid + ':'
            if not e.get('id', '').startswith(prefix):
                raise CheckFailed(f'event id {e.get("id")!r} is not of run '
                                  f'{rid}')
            out.append(int(e['id'][len(prefix):]))
        return out

    def summary(self):
        kinds = {}
        for e in self.events:
            k = e.get('event', 'message')
            if k == 'message':
                k = e['json'].get('type', '?')
            kinds[k] = kinds.get(k, 0) + 1
        return f'HTTP {self.status}, events {kinds}, ended {self.ended}'


def start_run(launcher, options, question):
    s = Stream(launcher.gw, 'POST', '/api/chat/stream', body={
        'message': question, 'specialists': ['Synthetic'],
        'options': options})
    if s.status != 200:
        raise CheckFailed(f'POST /api/chat/stream answered {s.status}: '
                          f'{s.resp.read()[:300]!r}')
    s.read_until('the connected event', lambda x: x.events, 30)
    first = s.events[0]
    check(first.get('event') == 'connected' and
          first['json'].get('request_id'),
          f'a new run: connected, request {first["json"].get("request_id")}')
    return s, first['json']['request_id']


def partials(stream):
    return len(stream.of_type('partial_result'))


# ---------------------------------------------------------------------------
# Scenarios

def scenario_gateway(launcher, pids):
    log('--- the gateway dies mid-run; a client resumes on its successor')
    s, rid = start_run(launcher, RUN_A, 'launcher test: resume across a '
                       'gateway restart')
    s.read_until('10 partial results', lambda x: partials(x) >= 10, 30)
    check(not s.of_type('complete'), 'the run is still streaming')
    old = pids['gateway']
    kill9('gateway', old)
    # Whatever was on the wire before the kill still arrives; then the
    # stream breaks.
    s.read_to_end(30)
    check(not s.named('done') and not s.of_type('complete'),
          f'the first stream ended without done/complete ({s.summary()})')
    seqs_before = s.seqs(rid)
    last = max(seqs_before)

    launcher.wait_log('the gateway\'s signal',
                      rf'gateway \(pid {old[0]}\) was killed by signal 9 '
                      r'\(SIGKILL\).*restart #1 in', 30)
    new = launcher.wait_restarted('gateway', old)
    launcher.wait_ready()
    check(True, f'the gateway is back on port {launcher.gw} as pid {new[0]}')

    r = Stream(launcher.gw, 'GET', '/api/chat/stream',
               headers={'Last-Event-ID': f'{rid}:{last}'})
    check(r.status == 200, f'the resume with Last-Event-ID {rid}:{last} is '
          f'answered 200 (got {r.status})')
    r.read_to_end(60)
    first = r.events[0] if r.events else {}
    check(first.get('event') == 'connected' and
          first['json'].get('status') == 'resumed' and
          first['json'].get('after_seq') == last and
          first.get('id') == f'{rid}:{last}',
          f'the resumed stream starts with connected/resumed after seq {last}')
    seqs = seqs_before + r.seqs(rid)
    check(seqs == list(range(1, len(seqs) + 1)),
          f'seq 1..{len(seqs)} arrived once each, in order, across the two '
          f'streams ({len(seqs_before)} + {len(seqs) - len(seqs_before)})')
    count = partials(s) + partials(r)
    check(count == RUN_A['count'],
          f'{count} partial results of {RUN_A["count"]}, none lost or '
          'repeated')
    complete = r.of_type('complete')
    done = r.named('done')
    check(len(complete) == 1 and complete[0].get('outcome') == 'ok' and
          len(done) == 1 and done[0].get('status') == 'complete',
          f'the run completed (outcome ok, done complete): {r.summary()}')

    now = launcher.pids()
    for name in BINARIES:
        if name != 'gateway':
            check(now.get(name) == pids[name] and alive(now[name]),
                  f'{name} was not restarted (pid {pids[name][0]})')
    check(len(re.findall(r'restarted ', launcher.log_text())) == 1,
          'the launcher restarted exactly one process')
    return now


def scenario_orchestrator(launcher, pids):
    log('--- the orchestrator dies mid-run; the gateway reconnects by itself')
    s, rid = start_run(launcher, RUN_B, 'launcher test: a run lost with its '
                       'orchestrator')
    s.read_until('5 partial results', lambda x: partials(x) >= 5, 30)
    old = pids['orchestrator']
    kill9('orchestrator', old)
    s.read_to_end(30)
    errors = s.named('error')
    check(s.ended == 'eof',
          f'the gateway ended the response cleanly ({s.ended})')
    check(len(errors) == 1 and errors[0].get('code') == 'unavailable' and
          errors[0].get('retryable') is True and
          errors[0].get('source') == 'gateway' and not s.named('done'),
          f'the client was told: error unavailable, retryable, no done '
          f'({errors})')
    last = max(s.seqs(rid))

    launcher.wait_log('the orchestrator\'s signal',
                      rf'orchestrator \(pid {old[0]}\) was killed by signal '
                      r'9 \(SIGKILL\)', 30)
    new = launcher.wait_restarted('orchestrator', old)
    launcher.wait_ready()
    launcher.wait_synthetic()
    check(True, f'the orchestrator is back as pid {new[0]}; the gateway '
          'reaches it')

    # The lost run: the new orchestrator has never heard of it.
    r = Stream(launcher.gw, 'GET', '/api/chat/stream',
               headers={'Last-Event-ID': f'{rid}:{last}'})
    r.read_to_end(30)
    gaps = r.named('error')
    done = r.named('done')
    check(r.status == 200 and len(gaps) == 1 and
          gaps[0].get('code') == 'gap' and gaps[0].get('retryable') is False
          and len(done) == 1 and done[0].get('status') == 'failed',
          f'resuming the lost run ends it explicitly: gap, done failed '
          f'({r.summary()}: {gaps} {done})')

    c, crid = start_run(launcher, RUN_C, 'launcher test: after the '
                        'orchestrator came back')
    c.read_to_end(60)
    seqs = c.seqs(crid)
    complete = c.of_type('complete')
    check(partials(c) == RUN_C['count'] and
          seqs == list(range(1, len(seqs) + 1)) and len(complete) == 1 and
          complete[0].get('outcome') == 'ok' and
          [d.get('status') for d in c.named('done')] == ['complete'],
          f'a new run through the gateway completes ({c.summary()})')

    now = launcher.pids()
    for name in BINARIES:
        if name != 'orchestrator':
            check(now.get(name) == pids[name] and alive(now[name]),
                  f'{name} was not restarted (pid {pids[name][0]})')
    return now


RESTART_LINE = (r'gateway \(pid {pid}\) was killed by signal 9 \(SIGKILL\) '
                r'after [0-9.]+s; restart #(\d+) in ([0-9.]+)s( \(crash loop: '
                r'(\d+) exits in a row)?')


def scenario_backoff(launcher, pids):
    log('--- the gateway in a crash loop: each wait doubles')
    ident = pids['gateway']
    delays = []
    for i in range(3):
        # Right after a restart: it has not been up long enough to count as
        # a clean run (deploy/local/launch.sh: RESTART_STABLE_MS).
        killed = time.monotonic()
        kill9('gateway', ident)
        m = launcher.wait_log(f'kill {i + 1} of the gateway',
                              RESTART_LINE.format(pid=ident[0]), 30)
        delay = float(m.group(2))
        new = launcher.wait_restarted('gateway', ident, timeout=delay + 30)
        took = time.monotonic() - killed
        log(f'restart #{m.group(1)}: announced {delay} s, pid {new[0]} after '
            f'{took:.2f} s; {(m.group(3) or "no crash loop noted").strip()}')
        check(took >= delay, f'the restart waited the announced {delay} s '
              f'({took:.2f} s)')
        if i > 0:
            check(m.group(4) is not None and
                  int(m.group(4)) == int(prev.group(4) or 1) + 1,
                  f'the log calls it a crash loop, {m.group(4)} exits in a '
                  'row')
            check(delay == 2 * delays[-1],
                  f'the wait doubled: {delays[-1]} s -> {delay} s')
        else:
            check(delay in (RESTART_FIRST_S, 2 * RESTART_FIRST_S),
                  f'the first wait is {delay} s')
        delays.append(delay)
        prev = m
        ident = new
    launcher.wait_ready()
    now = launcher.pids()
    for name in BINARIES:
        if name != 'gateway':
            check(now.get(name) == pids[name] and alive(now[name]),
                  f'{name} was not restarted')
    return now


def check_all_gone(launcher, pids, what):
    deadline = time.monotonic() + 5
    while (any(alive(p) for p in launcher.seen) and
           time.monotonic() < deadline):
        time.sleep(0.05)
    left = [p[0] for p in launcher.seen if alive(p)]
    check(not left, f'{what}: every process the launcher started is gone '
          f'(left: {left})')
    check(not os.path.exists(os.path.join(launcher.data_dir, 'pids')),
          'the pids file is removed')


def scenario_sigint(launcher, pids):
    log('--- SIGINT while a restart is pending')
    ident = pids['gateway']
    kill9('gateway', ident)
    launcher.wait_log('the gateway\'s death',
                      RESTART_LINE.format(pid=ident[0]), 30)
    lines_before = launcher.log_text().count('restarted ')
    started = time.monotonic()
    status = launcher.signal_and_wait(signal.SIGINT, STOP_DEADLINE_S)
    took = time.monotonic() - started
    check(status == 130, f'the launcher exited 130 on SIGINT within '
          f'{STOP_DEADLINE_S} s (status {status}, {took:.2f} s)')
    check_all_gone(launcher, pids, 'SIGINT')
    time.sleep(0.5)
    text = launcher.log_text()
    check(text.count('restarted ') == lines_before and
          'SIGINT: stopping every process' in text,
          'nothing was restarted during the shutdown')
    with socket.socket() as sock:
        sock.settimeout(2)
        check(sock.connect_ex(('127.0.0.1', launcher.gw)) != 0,
              'nothing listens on the gateway port')


def scenario_sigterm(launcher, ready_s):
    log('--- started again, then SIGTERM')
    pids = launcher.start(ready_s)
    launcher.wait_ready()
    started = time.monotonic()
    status = launcher.signal_and_wait(signal.SIGTERM, STOP_DEADLINE_S)
    took = time.monotonic() - started
    check(status == 143, f'the launcher exited 143 on SIGTERM within '
          f'{STOP_DEADLINE_S} s (status {status}, {took:.2f} s)')
    check_all_gone(launcher, pids, 'SIGTERM')


def dump(launcher, out_path):
    for path in [out_path] + sorted(
            os.path.join(launcher.data_dir, 'logs', n)
            for n in os.listdir(os.path.join(launcher.data_dir, 'logs'))):
        try:
            with open(path, 'rb') as f:
                tail = f.read()[-3000:].decode('utf-8', 'replace')
        except OSError:
            continue
        log(f'--- {path} (tail) ---\n{tail}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--bin-dir', default=os.environ.get(
        'AGENTSTREAM_BIN_DIR', os.path.join(ROOT, 'build', 'bin')))
    parser.add_argument('--ready-timeout', type=float, default=240,
                        help='seconds for the first start (it generates the '
                        'data set)')
    args = parser.parse_args()

    for tool in ('bash', 'curl'):
        if shutil.which(tool) is None:
            return skip_or_fail(f'{tool} is not installed (launch.sh needs '
                                'it)')
    missing = [b for b in BINARIES
               if not os.access(os.path.join(args.bin_dir, b), os.X_OK)]
    if missing:
        log(f'FAIL: not built in {args.bin_dir}: {missing}')
        return 1

    tmp = tempfile.mkdtemp(prefix='agentstream-launcher-')
    out_path = os.path.join(tmp, 'launcher.out')
    launcher = Launcher(args.bin_dir, os.path.join(tmp, 'data'),
                        free_port_runs(1, 1, 4, 5), out_path)
    ok = False
    try:
        pids = launcher.start(args.ready_timeout)
        launcher.wait_ready()
        launcher.wait_synthetic()
        pids = scenario_gateway(launcher, pids)
        pids = scenario_orchestrator(launcher, pids)
        pids = scenario_backoff(launcher, pids)
        scenario_sigint(launcher, pids)
        scenario_sigterm(launcher, args.ready_timeout)
        ok = True
        log('PASS')
    except CheckFailed as e:
        log(f'FAIL: {e}')
    finally:
        launcher.cleanup()
        if not ok:
            dump(launcher, out_path)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
