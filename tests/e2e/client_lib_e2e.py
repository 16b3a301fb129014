#!/usr/bin/python3
"""The client library (gateway/web/agentstream.js) in headless Chromium
against the real gateway, stdlib only (ctest: client_lib_e2e, through
run_browser_e2e.sh, which starts the orchestrator and the specialists).

This script starts the gateway itself with a short --heartbeat-ms (so the
library's watchdog, 2.5 heartbeats, is quick to test) and puts a small TCP
proxy (cut_proxy.py) between the browser and it. A consumer page
(client_lib_harness.js, run by WebDriver in a page of the gateway's origin)
imports /agentstream.js, starts one run and records what it sees. Every run
is then checked against the run as the gateway replays it in full
(`GET /api/runs/{id}/stream?after=0`, read here without the proxy) and the
orchestrator's count of the updates it appended.

  types     `types`, `batchMax` and `batchMs` on: the consumer sees only
            those kinds, each seq once, in the order of the full run, and
            `done`; the updates came as `batch` events only.
  cuts      the proxy cuts the connection three times at random points (a
            random seq, and inside the next chunk at a random byte); the
            consumer sees seq 1..N once each, in order, and every reconnect
            asked for `after=<the last seq it had>`; once on EventSource,
            once on the fetch transport (`cuts_fetch`).
  halfopen  the proxy stops forwarding without closing; the watchdog
            notices (a `reconnecting` with reason `watchdog`), the library
            resumes, the consumer sees 1..N once each.
  minimal   gateway/web/minimal.html (docs/CLIENT.md) asks the ACC-1042
            question and renders the final answer and every specialist at
            100 %.

Exit status: 0 on success, 1 when a check fails, 2 when the browser could
not be driven; without chromium or chromedriver 77 (skipped), or 1 under CI
(tests/e2e/ci_policy.py).
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.parse

import e2e_support
from browser_support import (add_browser_args, browser_session,
                             missing_browser_tools)
from ci_policy import skip_or_fail
from cut_proxy import CutProxy
from e2e_support import (HOOK_SCRIPT, CheckFailed, DriverError, Gateway,
                         Metrics, log, metric, wait_for, wait_specialists)

SCENARIOS = ('types', 'cuts', 'cuts_fetch', 'halfopen', 'minimal')
SYNTHETIC = 'Synthetic'
QUESTION = 'Run a synthetic load test and stream every update'
ACC_QUESTION = ('Assess the risk and AML compliance of account ACC-1042 '
                'over the last 6 months')
# The gateway's --heartbeat-ms here: the watchdog fires after 2.5 of them.
HEARTBEAT_MS = 1000
# The library reconnects quickly here (its default starts at 1 s).
FAST_RETRY = {'initialMs': 200, 'maxMs': 1000}
TYPES = ['progress', 'partial_result', 'complete']
CUTS = 3
HERE = os.path.dirname(os.path.abspath(__file__))
e2e_support.LOG_TAG = 'client_lib_e2e'

PROGRESS_SCRIPT = r"""
const r = window.__lib, run = window.__libRun;
if (!r) return null;
const last = r.statuses.length ? r.statuses[r.statuses.length - 1] : null;
return {n: r.updates.length, lastSeq: run ? run.lastSeq : 0,
        requestId: run ? run.requestId : null, status: last && last.status,
        connections: r.connections.length, finished: r.finished,
        importError: r.importError};
"""


def replay(gateway_url, rid, timeout=20):
    """[(type, seq)] of every update of run `rid`, as the gateway replays it
    from the start to a client with no options (the reference)."""
    url = f'{gateway_url}api/runs/{urllib.parse.quote(rid)}/stream?after=0'
    host, port = urllib.parse.urlsplit(url).netloc.split(':')
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, int(port)), timeout=5) as s:
        path = url.split(f'{host}:{port}', 1)[1]
        s.sendall(f'GET {path} HTTP/1.1\r\nHost: {host}\r\n'
                  'Accept: text/event-stream\r\nConnection: close\r\n\r\n'
                  .encode())
        data = b''
        while b'event: done' not in data:
            if time.monotonic() > deadline:
                raise CheckFailed(f'the replay of {rid} did not end within '
                                  f'{timeout} s')
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    if b' 200 ' not in head.split(b'\r\n', 1)[0]:
        raise CheckFailed(f'the replay of {rid} answered {head[:200]!r}')
    if b'chunked' in head.lower():
        body = dechunk(body)
    out = []
    for block in body.decode().replace('\r\n', '\n').split('\n\n'):
        event, datas = 'message', []
        for line in block.split('\n'):
            if line.startswith('event:'):
                event = line[6:].strip()
            elif line.startswith('data:'):
                datas.append(line[5:].removeprefix(' '))
        if event != 'message' or not datas:
            continue
        update = json.loads('\n'.join(datas))
        out.append((update.get('type'), update.get('seq')))
    return out


def dechunk(body):
    out = b''
    while body:
        size, _, rest = body.partition(b'\r\n')
        n = int(size.split(b';')[0] or b'0', 16)
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out


class Context:
    def __init__(self, args, gateway, proxy, metrics):
        self.args = args
        self.gateway = gateway
        self.proxy = proxy
        self.metrics = metrics


def start_consumer(driver, ctx, options):
    """Loads a page of the gateway's origin through the proxy and starts one
    run with the library there (client_lib_harness.js)."""
    driver.s('POST', '/url', {'url': ctx.proxy.url + 'minimal.html'},
             timeout=60)
    driver.execute(HOOK_SCRIPT + 'return true;')
    with open(os.path.join(HERE, 'client_lib_harness.js')) as f:
        harness = f.read()
    driver.execute(harness, {'question': QUESTION, 'options': options})


def progress(driver):
    p = driver.execute(PROGRESS_SCRIPT)
    if p and p.get('importError'):
        raise CheckFailed(f'the page could not import /agentstream.js: '
                          f'{p["importError"]}')
    return p


def wait_progress(driver, what, pred, timeout):
    last = {}

    def check():
        p = progress(driver)
        last.clear()
        last.update(p or {})
        if p and p['finished'] and not pred(p):
            raise CheckFailed(f'the run ended before {what}: '
                              f'{p["finished"]}')
        return p if p and pred(p) else None

    try:
        return wait_for(what, check, timeout, interval=0.05)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; consumer: {last}') from None


def finish(driver, ctx, before):
    """Waits for the run's end; returns (record, reference, appended)."""
    wait_progress(driver, 'the run to end', lambda p: p['finished'],
                  ctx.args.timeout)
    rec = driver.execute('return window.__lib;')
    errors = driver.execute('return window.__e2eErrors || [];')
    rid = rec['finished']['requestId']
    ref = replay(ctx.gateway.url, rid)
    after = ctx.metrics.snapshot()
    name = 'agentstream_orchestrator_updates_total'
    appended = int(metric(after, name) - metric(before, name))
    problems = []
    if rec['finished']['status'] != 'closed' or \
            rec['finished']['runStatus'] != 'complete':
        problems.append(f'the run ended {rec["finished"]}')
    if rec['errors'] or errors:
        problems.append(f'errors: {rec["errors"]} {errors}')
    seqs = [s for _, s in ref]
    if seqs != list(range(1, appended + 1)):
        problems.append(f'the replay of {rid} holds seqs {seqs[:5]}...'
                        f'{seqs[-5:]} ({len(seqs)}), the orchestrator '
                        f'appended {appended}')
    unsequenced = [t for t, s in rec['updates'] if s is None]
    if unsequenced.count('done') != 1 or rec['updates'][-1][0] != 'done' or \
            set(unsequenced) - {'connected', 'done'}:
        problems.append(f'updates without a seq: {unsequenced}, expected '
                        'connected ones and one done, last')
    return rec, ref, appended, problems


def check_resumes(rec, fetch):
    """Every reconnect asked for what followed the last seq it had."""
    problems = []
    rid = rec['finished']['requestId']
    for c in rec['connections'][1:]:
        m = re.search(r'[?&]after=(\d+)', c['url'])
        if not m or f'api/runs/{rid}/stream' not in c['url']:
            problems.append(f'a reconnect to {c["url"]}')
            continue
        after = int(m.group(1))
        if after != c['delivered'] or after != c['lastSeq']:
            problems.append(f'a reconnect asked for after={after}; the '
                            f'consumer had seq {c["delivered"]} (lastSeq '
                            f'{c["lastSeq"]})')
        if fetch and c['lastEventId'] != f'{rid}:{after}':
            problems.append(f'a reconnect sent Last-Event-ID '
                            f'{c["lastEventId"]!r}')
    return problems


def synthetic_options(count, rate, size=None, **more):
    run_options = {'count': count, 'rate': rate}
    if size is not None:
        run_options['size'] = size
    return {'specialists': [SYNTHETIC], 'runOptions': run_options,
            'heartbeatMs': HEARTBEAT_MS, 'retry': FAST_RETRY, **more}


def scenario_types(driver, ctx):
    count = 60
    before = ctx.metrics.snapshot()
    # Updates of 1,500 bytes: past the gateway's 1,000, so compress: true
    # sends them gzipped in their envelopes, which the library inflates.
    start_consumer(driver, ctx, synthetic_options(
        count, 200, size=1500, types=TYPES, batchMax=5, batchMs=50,
        compress=True))
    rec, ref, appended, problems = finish(driver, ctx, before)
    want = [[t, s] for t, s in ref if t in TYPES + ['error', 'timeout']]
    got = [[t, s] for t, s in rec['updates'] if s is not None]
    if got != want:
        problems.append(f'the consumer saw {len(got)} updates '
                        f'{got[:6]}..., the run has {len(want)} of those '
                        f'types {want[:6]}...')
    kinds = {t for t, _ in rec['updates']}
    if kinds - set(TYPES) - {'connected', 'done'}:
        problems.append(f'the consumer saw kinds {sorted(kinds)}')
    partials = sum(1 for t, _ in got if t == 'partial_result')
    if partials != count:
        problems.append(f'{partials} partial results, Synthetic sent {count}')
    raw = rec['rawEvents']
    if raw.get('message', 0) != 0 or not 0 < raw.get('batch', 0) < len(got):
        problems.append(f'events on the wire: {raw} for {len(got)} updates '
                        '(expected batches of several, no single ones)')
    if rec['compressedOnWire'] < count:
        problems.append(f'{rec["compressedOnWire"]} compressed payloads on '
                        f'the wire for {count} partial results of 1,500 B')
    if rec['envelopesDelivered'] != 0:
        problems.append(f'{rec["envelopesDelivered"]} updates reached the '
                        'consumer still compressed')
    if problems:
        raise CheckFailed('; '.join(problems))
    log(f'{rec["finished"]["requestId"]}: {len(got)} of the run\'s '
        f'{appended} updates ({", ".join(TYPES)}) in {raw.get("batch")} '
        f'batches, {rec["compressedOnWire"]} of them compressed on the '
        f'wire, each seq once in order, then done')


def run_with_cuts(driver, ctx, transport):
    count = 150
    before = ctx.metrics.snapshot()
    options = synthetic_options(count, 25)
    if transport == 'fetch':
        options['transport'] = 'fetch'
    start_consumer(driver, ctx, options)
    points = sorted(random.sample(range(8, count - 30), CUTS))
    cut_log = []
    for i, point in enumerate(points):
        wait_progress(driver, f'seq {point}',
                      lambda p: p['lastSeq'] >= point and p['status'] ==
                      'open' and p['connections'] == i + 1, 30)
        closed = ctx.proxy.cut()
        wait_progress(driver, f'reconnect {i + 1}',
                      lambda p: p['connections'] == i + 2 and
                      p['status'] == 'open', 15)
        cut_log.append((point, closed, ctx.proxy.cuts[-1]))
    rec, ref, appended, problems = finish(driver, ctx, before)
    got = [[t, s] for t, s in rec['updates'] if s is not None]
    if got != [list(r) for r in ref]:
        seqs = [s for _, s in got]
        dups = sorted({s for s in seqs if seqs.count(s) > 1})
        missing = sorted(set(range(1, appended + 1)) - set(seqs))
        problems.append(f'the consumer saw {len(got)} updates, the run has '
                        f'{appended} (duplicates {dups[:10]}, missing '
                        f'{missing[:10]})')
    problems += check_resumes(rec, transport == 'fetch')
    reconnecting = [s for s in rec['statuses'] if s['status'] ==
                    'reconnecting']
    if len(reconnecting) < CUTS or len(rec['connections']) != CUTS + 1:
        problems.append(f'{len(rec["connections"])} connections and '
                        f'{len(reconnecting)} reconnecting statuses for '
                        f'{CUTS} cuts')
    if not all(closed == 1 and any(size for _, _, size in record)
               for _, closed, record in cut_log):
        problems.append(f'a cut did not cut one stream inside a chunk '
                        f'(seq, streams, [(connection, bytes forwarded, '
                        f'chunk size)]): {cut_log}')
    if problems:
        raise CheckFailed('; '.join(problems))
    log(f'{transport}: {rec["finished"]["requestId"]} cut after seqs '
        f'{points} (chunk bytes forwarded/size: '
        f'{[c for _, _, c in cut_log]}); the consumer saw seq 1..{appended} '
        f'once each in order; reconnects asked for after='
        f'{[c["delivered"] for c in rec["connections"][1:]]}; '
        f'{rec["finished"]["duplicates"]} repeats dropped')


def scenario_cuts(driver, ctx):
    run_with_cuts(driver, ctx, 'eventsource')


def scenario_cuts_fetch(driver, ctx):
    run_with_cuts(driver, ctx, 'fetch')


def scenario_halfopen(driver, ctx):
    count = 100
    before = ctx.metrics.snapshot()
    start_consumer(driver, ctx, synthetic_options(count, 25))
    point = random.randrange(10, count - 40)
    wait_progress(driver, f'seq {point}',
                  lambda p: p['lastSeq'] >= point and p['status'] == 'open',
                  30)
    frozen = ctx.proxy.freeze()
    frozen_at = progress(driver)['lastSeq']
    rec, ref, appended, problems = finish(driver, ctx, before)
    still_open = ctx.proxy.frozen_open()
    got = [[t, s] for t, s in rec['updates'] if s is not None]
    if got != [list(r) for r in ref]:
        problems.append(f'the consumer saw {len(got)} updates, the run has '
                        f'{appended}')
    problems += check_resumes(rec, False)
    watchdog = [s for s in rec['statuses'] if s['status'] == 'reconnecting'
                and s['reason'] == 'watchdog']
    if len(watchdog) != 1 or len(rec['connections']) != 2:
        problems.append(f'statuses {rec["statuses"]}, connections '
                        f'{len(rec["connections"])}: expected one watchdog '
                        'reconnect')
    if not frozen or not set(frozen) & set(still_open):
        problems.append(f'the proxy froze connections {frozen}; open at the '
                        f'end: {still_open} (the half-open one must stay '
                        'open)')
    if problems:
        raise CheckFailed('; '.join(problems))
    log(f'{rec["finished"]["requestId"]}: frozen at seq {frozen_at} '
        f'(connections {frozen}, still open at the end {still_open}); the '
        f'watchdog resumed after {rec["connections"][1]["delivered"]}; seq '
        f'1..{appended} once each in order')


def scenario_minimal(driver, ctx):
    url = (ctx.gateway.url + 'minimal.html?q=' +
           urllib.parse.quote(ACC_QUESTION))
    driver.s('POST', '/url', {'url': url}, timeout=60)
    driver.execute(HOOK_SCRIPT + 'return true;')
    script = r"""
const t = (id) => document.getElementById(id).textContent.trim();
return {status: t('status'), run: t('run'), answer: t('answer'),
        specialists: Array.from(document.querySelectorAll('#specialists li'))
            .map((li) => li.textContent),
        errors: window.__e2eErrors || []};"""
    last = {}

    def ended():
        s = driver.execute(script)
        last.clear()
        last.update(s)
        return s if s['status'].startswith(('closed', 'failed')) else None

    try:
        s = wait_for('the minimal page to end its run', ended,
                     ctx.args.timeout, interval=0.2)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; page: {last}') from None
    problems = []
    if s['status'] != 'closed' or not s['run'].endswith(' complete'):
        problems.append(f'status {s["status"]!r}, run {s["run"]!r}')
    if not s['answer']:
        problems.append('#answer is empty')
    if len(s['specialists']) < 3 or \
            not all(': 100% ok' in li for li in s['specialists']):
        problems.append(f'specialists {s["specialists"]}, expected three or'
                        ' more at 100% ok')
    if s['errors']:
        problems.append(f'script errors: {s["errors"]}')
    if problems:
        raise CheckFailed('; '.join(problems))
    log(f'minimal.html: {s["run"]}; {s["specialists"]}; answer: '
        f'{s["answer"][:200]}')


def main():
    parser = argparse.ArgumentParser(
        description='The client library in headless Chromium against the '
                    'real gateway.')
    parser.add_argument('--gateway-bin', required=True)
    parser.add_argument('--gateway-port', type=int, required=True)
    parser.add_argument('--gateway-log', default='gateway.log')
    parser.add_argument('--gateway-pid-file')
    parser.add_argument('--orchestrator', default='127.0.0.1:50051')
    parser.add_argument('--orchestrator-metrics', required=True,
                        help='the orchestrator\'s /metrics URL')
    parser.add_argument('--scenarios', default=','.join(SCENARIOS),
                        help='comma-separated, of ' + ', '.join(SCENARIOS))
    parser.add_argument('--ready-timeout', type=float, default=60)
    parser.add_argument('--timeout', type=float, default=90,
                        help='seconds to wait for a run to end')
    parser.add_argument('--screenshot', default='client_lib_e2e.png',
                        help='where to save the last page as a PNG')
    parser.add_argument('--seed', type=int,
                        help='the random cut points\' seed (default: logged)')
    add_browser_args(parser)
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(',') if s]
    if not scenarios or set(scenarios) - set(SCENARIOS):
        parser.error(f'unknown scenarios in {args.scenarios!r}')
    missing = missing_browser_tools(args)
    if missing:
        return skip_or_fail('client_lib_e2e', missing)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    log(f'seed {seed}')

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix='agentstream-lib-e2e-')
    gateway = proxy = None
    status = 0
    try:
        gateway = Gateway(args.gateway_bin, '127.0.0.1', args.gateway_port,
                          args.orchestrator, args.gateway_log,
                          pid_file=args.gateway_pid_file,
                          extra_args=['--heartbeat-ms', str(HEARTBEAT_MS)])
        gateway.start(timeout=args.ready_timeout)
        want = {SYNTHETIC}
        if 'minimal' in scenarios:
            want |= {'DataAnalyst', 'RiskAnalyst', 'ComplianceExpert'}
        wait_specialists(gateway.url, want, args.ready_timeout)
        proxy = CutProxy(args.gateway_port, seed=seed)
        log(f'gateway {gateway.url} (--heartbeat-ms {HEARTBEAT_MS}), the '
            f'browser goes through the proxy {proxy.url}')
        ctx = Context(args, gateway, proxy,
                      Metrics(args.orchestrator_metrics,
                              gateway.url + 'metrics'))
        with browser_session(args, work) as driver:
            for scenario in scenarios:
                started = time.monotonic()
                try:
                    globals()['scenario_' + scenario](driver, ctx)
                    log(f'PASS {scenario} '
                        f'({time.monotonic() - started:.1f} s)')
                except CheckFailed as e:
                    log(f'FAIL {scenario}: {e}')
                    status = 1
            try:
                driver.screenshot(args.screenshot)
            except DriverError as e:
                log(f'could not save the screenshot: {e}')
        if status == 0:
            log('PASS')
    except CheckFailed as e:
        log(f'FAIL: {e}')
        status = 1
    except DriverError as e:
        log(f'ERROR: could not drive the browser: {e}')
        status = 2
    finally:
        if proxy is not None:
            proxy.close()
        if gateway is not None:
            gateway.stop()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
