#!/usr/bin/python3
"""The launcher under test and its processes, for launcher_e2e.py (and
free_port_runs for run_browser_e2e.sh, which starts the launcher too).

deploy/local/launch.sh started as a child of the test on free loopback
ports (free_port_runs); the processes it starts are identified by PID and
start time (never by name, so a reused PID is never taken for ours); waits
on its log, its pids file and the gateway's /readyz; a cleanup that ends
only what it started. Stdlib only.
"""

import ctypes
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from e2e_support import CheckFailed, http_get, wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
LAUNCH = os.path.join(ROOT, 'deploy', 'local', 'launch.sh')
BINARIES = ('gateway', 'orchestrator', 'data_analyst', 'risk_analyst',
            'compliance_expert', 'synthetic')
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

    def __init__(self, bin_dir, data_dir, ports, out_path, extra_args=(),
                 expect=BINARIES):
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.gw, self.orch, self.spec, self.metrics = ports
        self.out_path = out_path
        self.extra_args = list(extra_args)
        self.expect = tuple(expect)  # the process names the launcher runs
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
                 '--metrics-base-port', str(self.metrics)] + self.extra_args,
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
        check(sorted(pids) == sorted(self.expect) and
              all(alive(p) for p in pids.values()),
              f'the launcher runs all {len(self.expect)} processes: '
              f'{self.describe(pids)}')
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
