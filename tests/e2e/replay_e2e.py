#!/usr/bin/python3
"""The replay server (gateway/replay/, docs/CLIENT.md "Mock server") consumed
by the browser's own EventSource in headless Chromium, stdlib only (ctest:
replay_e2e, through run_browser_e2e.sh, which starts the orchestrator and
the specialists; this script starts the gateway and `replay`).

  record    the real ACC-1042 question asked of the real gateway with
            http.client (`GET /api/chat/stream?message=...`), its body saved
            to <tmp>/acc1042.sse byte for byte, as `curl -N` saves it; the
            same run followed live in Chromium (an EventSource on the
            gateway's /api/runs/{id}/stream, in a page of its origin). The
            live events must be the recording's, the updates seq 1..N with N
            what the orchestrator appended, and `done` last.
  replay    `replay --dir <tmp>` on a free loopback port; a page of its
            origin (/healthz: it serves no files, so the consumer is
            injected by WebDriver) and an EventSource on
            /api/chat/stream?message=<the question>&speed=20: the same
            (event name, type, seq, id) sequence as the live stream,
            ending with `done`.
  resume    an EventSource on /api/runs/{id}/stream closed by the page in
            its handler of the update that makes half of them; a new one on
            ?after=<the last seq seen>: a `connected` resumed after that
            seq, then the rest, nothing repeated or skipped, the two halves
            together the live run's updates, and `done`.
  cut       the replay behind cut_proxy.py, played slower, the page loaded
            through the proxy; the proxy cuts the stream mid-way (inside a
            chunk, at a random byte); EventSource reconnects by itself with
            Last-Event-ID: one `connected` resumed after the last seq it
            had, every seq once in order, and `done`.

Exit status: 0 on success, 1 when a check fails, 2 when the browser could
not be driven; without chromium or chromedriver 77 (skipped), or 1 under CI
(tests/e2e/ci_policy.py).
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import e2e_support
from browser_support import (add_browser_args, browser_session,
                             missing_browser_tools)
from ci_policy import skip_or_fail
from cut_proxy import CutProxy
from e2e_support import (CheckFailed, DriverError, Gateway, Metrics,
                         http_get, log, metric, wait_for, wait_specialists)

QUESTION = ('Assess the risk and AML compliance of account ACC-1042 over '
            'the last 6 months')
EXPECT = ('DataAnalyst', 'RiskAnalyst', 'ComplianceExpert')
# The replayed run ten times faster or more (issue 12: keep it quick).
FAST_SPEED = 20
# The cut scenario plays the run over about this long, so that the proxy
# can cut it mid-way between two polls of the page.
CUT_PLAY_S = 6.0
# The replay server's `retry:`: EventSource waits this long to reconnect.
RETRY_MS = 250
e2e_support.LOG_TAG = 'replay_e2e'

# Starts one EventSource in the page and records every event it dispatches:
# (event name, data's type, seq, status, after_seq, lastEventId). A
# connection error is an Event, a server's `event: error` a MessageEvent.
# closeAfter > 0: the page closes it in the handler of that update.
CONSUMER_SCRIPT = r"""
const [name, url, closeAfter] = arguments;
window.__rec = window.__rec || {};
const rec = {url, events: [], errors: 0, opens: 0, ended: false,
             closedEarly: false, bad: []};
window.__rec[name] = rec;
const es = new EventSource(url);
es.onopen = () => { rec.opens++; };
const updates = () => rec.events.filter((e) => e.event === 'message').length;
for (const n of ['connected', 'message', 'error', 'timeout', 'done',
                 'heartbeat', 'batch']) {
  es.addEventListener(n, (e) => {
    if (!(e instanceof MessageEvent)) {
      rec.errors++;
      if (es.readyState === EventSource.CLOSED) rec.ended = true;
      return;
    }
    let d = {};
    try { d = JSON.parse(e.data); } catch (x) { rec.bad.push(String(e.data)); }
    rec.events.push({event: e.type, type: d.type ?? null, seq: d.seq ?? null,
                     status: d.status ?? null, afterSeq: d.after_seq ?? null,
                     id: e.lastEventId,
                     at: performance.timeOrigin + performance.now()});
    if (e.type === 'done') { es.close(); rec.ended = true; }
    if (closeAfter > 0 && !rec.ended && updates() >= closeAfter) {
      es.close();
      rec.ended = true;
      rec.closedEarly = true;
    }
  });
}
return true;
"""

PROGRESS_SCRIPT = r"""
const r = (window.__rec || {})[arguments[0]];
if (!r) return null;
const m = r.events.filter((e) => e.event === 'message');
return {updates: m.length, lastSeq: m.length ? m[m.length - 1].seq : 0,
        ended: r.ended, errors: r.errors};
"""


def parse_sse(body):
    """(event, type, seq, id) of every event of an SSE body, as EventSource
    dispatches them (the last id carries over; comments and retry: are
    not events)."""
    out, last_id = [], ''
    for block in body.decode().replace('\r\n', '\n').split('\n\n'):
        event, datas = 'message', []
        for line in block.split('\n'):
            field, _, value = line.partition(':')
            value = value.removeprefix(' ')
            if field == 'event':
                event = value
            elif field == 'data':
                datas.append(value)
            elif field == 'id':
                last_id = value
        if not datas:
            continue
        d = json.loads('\n'.join(datas))
        out.append((event, d.get('type'), d.get('seq'), last_id))
    return out


def tuples(rec):
    return [(e['event'], e['type'], e['seq'], e['id']) for e in rec['events']]


def seqs(rec):
    return [e['seq'] for e in rec['events'] if e['event'] == 'message']


class Browser:
    def __init__(self, driver, timeout):
        self.driver = driver
        self.timeout = timeout

    def open(self, origin_url):
        """A page of that origin: /healthz, so nothing test-only is served."""
        self.driver.s('POST', '/url', {'url': origin_url + 'healthz'},
                      timeout=60)

    def consume(self, name, url, close_after=0):
        self.driver.execute(CONSUMER_SCRIPT, name, url, close_after)

    def progress(self, name):
        return self.driver.execute(PROGRESS_SCRIPT, name)

    def wait(self, name, what, pred, timeout=None):
        last = {}

        def check():
            p = self.progress(name)
            last.clear()
            last.update(p or {})
            return p if p and pred(p) else None

        try:
            return wait_for(what, check, timeout or self.timeout,
                            interval=0.05)
        except CheckFailed as e:
            raise CheckFailed(f'{e}; consumer {name}: {last}') from None

    def finish(self, name):
        self.wait(name, f'{name} to end', lambda p: p['ended'])
        rec = self.driver.execute('return window.__rec[arguments[0]];', name)
        if rec['bad']:
            raise CheckFailed(f'{name}: unparsable data {rec["bad"][:3]}')
        return rec


class Replay:
    """`replay --dir` on a free loopback port, stopped by its PID."""

    def __init__(self, binary, directory, log_path, work):
        self.port_file = os.path.join(work, 'replay.port')
        argv = [binary, '--dir', directory, '--host', '127.0.0.1',
                '--port', '0', '--port-file', self.port_file,
                '--retry-ms', str(RETRY_MS)]
        with open(log_path, 'ab') as f:
            self.proc = subprocess.Popen(argv, stdout=f,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        log(f'replay started: pid {self.proc.pid}')
        self.port = None
        self.url = None

    def wait_ready(self, timeout):
        def ready():
            if self.proc.poll() is not None:
                raise CheckFailed(f'replay exited with {self.proc.returncode}')
            try:
                with open(self.port_file) as f:
                    port = int(f.read().strip() or 0)
            except (OSError, ValueError):
                return False
            if not port:
                return False
            self.port = port
            self.url = f'http://127.0.0.1:{port}/'
            return http_get(self.url + 'healthz', timeout=2)[0] == 200

        wait_for('replay /healthz', ready, timeout, interval=0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def record_and_watch(gateway, browser, path, timeout):
    """Asks the question (http.client) and saves the body to `path` as it
    comes (a thread, as `curl -N` reads), while the browser follows the same
    run live. Returns (run id, live record, body)."""
    # The page is loaded first, so that the browser attaches one WebDriver
    # call after the gateway answers: the run takes well under a second.
    browser.open(gateway.url)
    conn = http.client.HTTPConnection('127.0.0.1', gateway.port, timeout=10)
    asked = time.time()
    chunks, ended = [], {}

    def read_all(resp):
        try:
            while True:  # Until the gateway ends the response (after done).
                chunk = resp.read1(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            ended['at'] = time.time()
        except OSError as e:
            ended['error'] = e

    try:
        conn.request('GET', '/api/chat/stream?message=' +
                     urllib.parse.quote(QUESTION),
                     headers={'Accept': 'text/event-stream'})
        resp = conn.getresponse()
        rid = resp.getheader('X-Request-Id') or ''
        if resp.status != 200 or not rid:
            raise CheckFailed(f'the gateway answered {resp.status} '
                              f'(X-Request-Id {rid!r}): {resp.read(500)!r}')
        reader = threading.Thread(target=read_all, args=(resp,), daemon=True)
        reader.start()
        # The same run, live, in a page of the gateway's origin.
        browser.consume('live', f'/api/runs/{urllib.parse.quote(rid)}/stream')
        reader.join(timeout)
        if reader.is_alive() or 'at' not in ended:
            raise CheckFailed(f'the recording of {rid} did not end within '
                              f'{timeout:.0f} s ({ended.get("error")})')
    finally:
        conn.close()  # Also ends the reader if it is still blocked.
    body = b''.join(chunks)
    with open(path, 'wb') as f:
        f.write(body)
    live = browser.finish('live')
    ms = lambda t: f'+{(t - asked) * 1000:.0f} ms'  # noqa: E731
    log(f'{rid}: recorded {len(body)} bytes to {os.path.basename(path)} '
        f'(done {ms(ended["at"])} after the question); live in the '
        f'browser: connected {ms(live["events"][0]["at"] / 1000)}, done '
        f'{ms(live["events"][-1]["at"] / 1000)}')
    return rid, live, body


def check_live(rid, live, body, appended):
    problems = []
    recorded = parse_sse(body)
    got = tuples(live)
    # The gateway's connected of a new run and of an attach from the start
    # are the same event (docs/GATEWAY.md, "The wire"); all else is the run.
    if got != recorded:
        problems.append(f'the live stream {got[:4]}... ({len(got)} events) '
                        f'is not the recording {recorded[:4]}... '
                        f'({len(recorded)})')
    if seqs(live) != list(range(1, appended + 1)):
        problems.append(f'live seqs {seqs(live)[:5]}... ({len(seqs(live))}), '
                        f'the orchestrator appended {appended}')
    if not got or got[0][0] != 'connected' or got[-1][0] != 'done' or \
            live['events'][-1]['status'] != 'complete':
        problems.append(f'the live stream runs {got[:1]}...{got[-1:]}, '
                        'expected connected ... done complete')
    if any(not i.startswith(rid + ':') for _, _, _, i in got):
        problems.append(f'ids of another run than {rid}: {got}')
    kinds = {t for e, t, _, _ in got if e == 'message'}
    if not {'progress', 'complete'} <= kinds:
        problems.append(f'the run had kinds {sorted(kinds)}')
    if problems:
        raise CheckFailed('; '.join(problems))


def scenario_replay(browser, replay, live):
    browser.open(replay.url)
    browser.consume('replayed', '/api/chat/stream?message=' +
                    urllib.parse.quote(QUESTION) + f'&speed={FAST_SPEED}')
    started = time.monotonic()
    rec = browser.finish('replayed')
    took = time.monotonic() - started
    got, want = tuples(rec), tuples(live)
    if got != want:
        diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                    min(len(got), len(want)))
        raise CheckFailed(f'the replayed stream ({len(got)} events) differs '
                          f'from the live one ({len(want)}) at event {diff}:'
                          f' {got[diff:diff + 2]} vs {want[diff:diff + 2]}')
    if rec['events'][-1]['status'] != 'complete' or rec['errors']:
        raise CheckFailed(f'the replay ended {rec["events"][-1]}, '
                          f'{rec["errors"]} connection errors')
    log(f'replayed at speed={FAST_SPEED}: {len(got)} events in {took:.2f} s, '
        f'the live sequence exactly (connected, {len(seqs(rec))} updates, '
        'done complete)')


def scenario_resume(browser, replay, rid, live):
    want = seqs(live)
    half = len(want) // 2
    base = f'/api/runs/{urllib.parse.quote(rid)}/stream'
    browser.open(replay.url)
    browser.consume('first', f'{base}?speed={FAST_SPEED}', close_after=half)
    first = browser.finish('first')
    if not first['closedEarly'] or seqs(first) != want[:half]:
        raise CheckFailed(f'the first half: seqs {seqs(first)}, closed early '
                          f'{first["closedEarly"]}; expected {want[:half]}')
    last = seqs(first)[-1]
    browser.consume('rest', f'{base}?after={last}&speed={FAST_SPEED}')
    rest = browser.finish('rest')
    problems = []
    head = rest['events'][0] if rest['events'] else {}
    if head.get('event') != 'connected' or head.get('status') != 'resumed' or \
            head.get('afterSeq') != last or head.get('id') != f'{rid}:{last}':
        problems.append(f'the resumed stream began {head}, expected '
                        f'connected resumed after_seq {last} id {rid}:{last}')
    if seqs(rest) != want[half:]:
        problems.append(f'after seq {last} came {seqs(rest)}, expected '
                        f'{want[half:]}')
    if seqs(first) + seqs(rest) != want:
        problems.append('the two halves are not the live run\'s updates')
    # Past the resume point the stream is the live one's, event for event.
    tail = [t for t in tuples(live) if t[2] is None or t[2] > last]
    tail = tail[next(i for i, t in enumerate(tail) if t[0] != 'connected'):]
    if tuples(rest)[1:] != tail:
        problems.append(f'the rest {tuples(rest)[1:4]}... is not the live '
                        f'stream after seq {last} {tail[:3]}...')
    if rest['events'][-1]['event'] != 'done':
        problems.append(f'the rest ended {rest["events"][-1]}')
    if problems:
        raise CheckFailed('; '.join(problems))
    log(f'closed after {half} updates (seq {last}), resumed with '
        f'?after={last}: seq {seqs(rest)[0]}..{seqs(rest)[-1]} '
        f'({len(seqs(rest))} updates) then done; 1..{want[-1]} once each')


def scenario_cut(browser, replay, rid, live, duration_ms, seed):
    want = seqs(live)
    speed = round(min(1000.0, max(0.01, duration_ms / 1000 / CUT_PLAY_S)), 3)
    proxy = CutProxy(replay.port, seed=seed)
    try:
        browser.open(proxy.url)
        browser.consume('cut', f'/api/runs/{urllib.parse.quote(rid)}/stream'
                        f'?speed={speed}')
        target = len(want) // 2
        p = browser.wait('cut', f'update {target} before the cut',
                         lambda p: p['updates'] >= target or p['ended'])
        if p['ended']:
            raise CheckFailed('the run ended before the cut')
        cut = proxy.cut()
        rec = browser.finish('cut')
        cuts = proxy.cuts[-1]
    finally:
        proxy.close()
    problems = []
    connected = [(i, e) for i, e in enumerate(rec['events'])
                 if e['event'] == 'connected']
    if cut < 1 or len(connected) != 2 or rec['errors'] < 1:
        problems.append(f'{cut} stream(s) cut, {len(connected)} connected, '
                        f'{rec["errors"]} connection errors: expected one '
                        'cut and one reconnect')
    else:
        at, resumed = connected[1]
        before = [e['seq'] for e in rec['events'][:at]
                  if e['event'] == 'message']
        point = before[-1] if before else 0
        if resumed['status'] != 'resumed' or resumed['afterSeq'] != point or \
                resumed['id'] != f'{rid}:{point}':
            problems.append(f'the reconnect began {resumed}; the page had '
                            f'seq {point} (Last-Event-ID {rid}:{point})')
    if seqs(rec) != want:
        problems.append(f'the consumer saw seqs {seqs(rec)}, the run '
                        f'{want}')
    if rec['events'][-1]['event'] != 'done' or \
            rec['events'][-1]['status'] != 'complete':
        problems.append(f'it ended {rec["events"][-1]}')
    if problems:
        raise CheckFailed('; '.join(problems))
    log(f'speed={speed}: cut asked when the page had seq {p["lastSeq"]} '
        f'(connection, bytes kept of the chunk, its size: {cuts}); '
        f'EventSource reconnected with Last-Event-ID {rid}:{point} and got '
        f'seq {point + 1}..{want[-1]}; 1..{want[-1]} once each, done')


def main():
    parser = argparse.ArgumentParser(
        description='The replay server consumed by EventSource in headless '
                    'Chromium, against a run recorded from the real gateway.')
    parser.add_argument('--gateway-bin', required=True)
    parser.add_argument('--replay-bin', required=True)
    parser.add_argument('--gateway-port', type=int, required=True)
    parser.add_argument('--gateway-log', default='gateway.log')
    parser.add_argument('--gateway-pid-file')
    parser.add_argument('--orchestrator', default='127.0.0.1:50051')
    parser.add_argument('--orchestrator-metrics', required=True,
                        help='the orchestrator\'s /metrics URL')
    parser.add_argument('--ready-timeout', type=float, default=60)
    parser.add_argument('--timeout', type=float, default=90,
                        help='seconds to wait for a stream to end')
    parser.add_argument('--screenshot', default='replay_e2e.png')
    parser.add_argument('--scenarios', default='replay,resume,cut',
                        help='after the recording: of replay, resume, cut')
    parser.add_argument('--seed', type=int,
                        help='the cut\'s seed (default: logged)')
    add_browser_args(parser)
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(',') if s]
    if set(scenarios) - {'replay', 'resume', 'cut'}:
        parser.error(f'unknown scenarios in {args.scenarios!r}')
    missing = missing_browser_tools(args)
    if missing:
        return skip_or_fail('replay_e2e', missing)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    log(f'seed {seed}')

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix='agentstream-replay-e2e-')
    recordings = os.path.join(work, 'recordings')
    os.mkdir(recordings)
    replay_log = os.path.join(os.path.dirname(os.path.abspath(
        args.gateway_log)), 'replay.log')
    gateway = replay = None
    status = 0
    try:
        gateway = Gateway(args.gateway_bin, '127.0.0.1', args.gateway_port,
                          args.orchestrator, args.gateway_log,
                          pid_file=args.gateway_pid_file)
        gateway.start(timeout=args.ready_timeout)
        wait_specialists(gateway.url, EXPECT, args.ready_timeout)
        metrics = Metrics(args.orchestrator_metrics, gateway.url + 'metrics')
        with browser_session(args, work) as driver:
            browser = Browser(driver, args.timeout)

            name = 'agentstream_orchestrator_updates_total'
            before = metric(metrics.snapshot(), name)
            rid, live, body = record_and_watch(
                gateway, browser, os.path.join(recordings, 'acc1042.sse'),
                args.timeout)
            appended = int(metric(metrics.snapshot(), name) - before)
            check_live(rid, live, body, appended)
            log(f'PASS record: {len(live["events"])} events live, seq '
                f'1..{appended}, the same as the {len(body)}-byte recording')

            replay = Replay(args.replay_bin, recordings, replay_log, work)
            replay.wait_ready(args.ready_timeout)
            status_code, listing = http_get(replay.url + 'api/recordings')
            served = json.loads(listing).get('recordings', []) \
                if status_code == 200 else []
            if [r.get('request_id') for r in served] != [rid] or \
                    served[0].get('updates') != appended:
                raise CheckFailed(f'replay serves {served} ({status_code}), '
                                  f'expected {rid} with {appended} updates')
            duration_ms = served[0].get('duration_ms') or 0
            log(f'replay {replay.url} serves {rid}: {appended} updates over '
                f'{duration_ms} ms as recorded')
            for scenario in scenarios:
                started = time.monotonic()
                try:
                    if scenario == 'replay':
                        scenario_replay(browser, replay, live)
                    elif scenario == 'resume':
                        scenario_resume(browser, replay, rid, live)
                    else:
                        scenario_cut(browser, replay, rid, live, duration_ms,
                                     seed)
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
        if replay is not None:
            replay.stop()
        if gateway is not None:
            gateway.stop()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
