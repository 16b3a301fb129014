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
  redis         started once more with --redis (./run.sh --redis): its
                redis-server and two orchestrator replicas (distinct
                --replica-id) run beside the rest; runs through the gateway
                complete and both replicas started some (round robin over
                the two addresses, by each one's runs_started_total); the
                store holds each run's end; SIGTERM stops every process, the
                redis-server too, and its append-only file is in the data
                directory.

The launcher and its processes (start, PIDs, waits, cleanup) are in
launcher_support.py, the SSE client in launcher_stream.py; the scenarios
and what they assert are here.

Every wait has a deadline; the test ends only processes it started, by PID
(the launcher gets SIGTERM if this script dies). Exit status: 0 pass,
1 failure, 77 skipped (bash or curl missing, outside CI; under CI a failure).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from launcher_stream import Stream, partials, start_run
from launcher_support import (BINARIES, ROOT, STOP_DEADLINE_S, CheckFailed,
                              Launcher, alive, check, free_port_runs,
                              http_get, kill9, log, skip_or_fail)

# Synthetic runs (docs/SPECIALISTS.md: options count, size, rate). A runs
# ~8 s and the gateway is killed after ~1 s of it; B would run 30 s and dies
# with the orchestrator after ~0.5 s; C is short.
RUN_A = {'count': 80, 'rate': 10, 'size': 16}
RUN_B = {'count': 300, 'rate': 10, 'size': 16}
RUN_C = {'count': 20, 'rate': 0, 'size': 16}
# The launcher's backoff (deploy/local/launch.sh: RESTART_FIRST_MS).
RESTART_FIRST_S = 0.5


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


def runs_started(port):
    status, body = http_get(f'http://127.0.0.1:{port}/metrics')
    m = re.search(r'(?m)^agentstream_orchestrator_runs_started_total(?:\{[^}]*\})?'
                  r' ([0-9.e+]+)', body.decode(errors='replace'))
    check(status == 200 and m, f'the orchestrator\'s metrics on :{port} '
          'count runs started')
    return float(m.group(1))


def scenario_redis(bin_dir, data_dir, out_path, ready_s):
    log('--- --redis: a redis-server and two orchestrators sharing runs')
    launcher = Launcher(bin_dir, data_dir, free_port_runs(1, 2, 4, 6),
                        out_path, extra_args=['--redis'],
                        expect=BINARIES + ('orchestrator2', 'redis'))
    try:
        pids = launcher.start(ready_s)
        launcher.wait_ready()
        launcher.wait_synthetic()
        with open(out_path, encoding='utf-8', errors='replace') as f:
            m = re.findall(r'run store: redis-server on 127\.0\.0\.1:(\d+)',
                           f.read())
        check(m, 'the launcher names its redis-server\'s port')
        redis_port = int(m[-1])
        args = open(f'/proc/{pids["orchestrator2"][0]}/cmdline',
                    'rb').read().split(b'\0')
        check(b'--replica-id' in args and
              args[args.index(b'--replica-id') + 1] == b'orchestrator2' and
              f'redis://127.0.0.1:{redis_port}'.encode() in args,
              'orchestrator2 runs with --replica-id orchestrator2 and the '
              'run store')
        ports = (launcher.metrics, launcher.metrics + 5)
        before = [runs_started(p) for p in ports]
        rids = []
        for i in range(6):
            c, rid = start_run(launcher, RUN_C, f'launcher test: --redis {i}')
            c.read_to_end(60)
            seqs = c.seqs(rid)
            check(partials(c) == RUN_C['count'] and
                  seqs == list(range(1, len(seqs) + 1)) and
                  [d.get('status') for d in c.named('done')] == ['complete'],
                  f'run {i} through the gateway completes ({c.summary()})')
            rids.append(rid)
        started = [runs_started(p) - b for p, b in zip(ports, before)]
        check(sum(started) == 6 and min(started) >= 1,
              f'both orchestrator replicas started runs: {started}')
        ends = subprocess.run(
            ['redis-cli', '-p', str(redis_port), 'EXISTS'] +
            [f'agentstream:{{{r}}}:end' for r in rids],
            capture_output=True, text=True, timeout=10, check=False).stdout
        check(ends.strip() == '6', f'the store holds the end of all 6 runs '
              f'({ends.strip()})')
        status = launcher.signal_and_wait(signal.SIGTERM, STOP_DEADLINE_S)
        check(status == 143, f'the launcher exited 143 on SIGTERM ({status})')
        check_all_gone(launcher, pids, 'SIGTERM with --redis')
        aof = os.path.join(data_dir, 'redis', 'appendonlydir')
        check(os.path.isdir(aof) and os.listdir(aof),
              f'the append-only file is in {aof}')
    finally:
        launcher.cleanup()


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
        if shutil.which('redis-server') and shutil.which('redis-cli'):
            scenario_redis(args.bin_dir, launcher.data_dir, out_path,
                           args.ready_timeout)
        elif os.environ.get('CI'):
            raise CheckFailed('redis-server is not installed (--redis)')
        else:
            log('SKIP: the --redis scenario: redis-server is not installed')
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
