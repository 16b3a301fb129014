#!/usr/bin/python3
"""Browser end-to-end test of the agentstream web client, stdlib only.

Drives Debian's headless Chromium through chromedriver (W3C WebDriver over
HTTP, spoken with urllib) against a running system, in three scenarios:

  answer  types a question into #question, clicks #send, waits (bounded)
          until #answer has text; the run completed and every activated
          specialist's card (at least the --expect ones) shows
          data-progress="100".
  resume  picks the Synthetic specialist on the page's roster (the system
          runs it slowly: ~9 s a run, see run_browser_e2e.sh), asks, and
          while the run streams kills the gateway (SIGKILL, by the PID this
          script started) and starts a new one on the same port. The
          client library the page is built on (agentstream.js) reconnects
          with its backoff and resumes after the last seq it had. The page must
          end with the complete answer, its raw event log must hold seq
          1..N once each (N = the updates the orchestrator appended), the
          Synthetic card exactly --synthetic-count results, the run must
          have started once and the new gateway must count a resume.
  cancel  the same slow Synthetic run, then the #cancel button: the page
          shows the cancelled ending the server sent (complete with outcome
          cancelled, the card's specialist_complete cancelled, done) and the
          orchestrator counts runs_cancelled_total{reason="request"} +1.

resume and cancel read the orchestrator's metrics (--orchestrator-metrics)
and resume needs a gateway this script owns: with --gateway-bin it starts
the gateway itself (and stops it by PID at the end); with only --url just
`answer` can run. Every scenario fails on script errors on the page.
Screenshots: --screenshot, and <name>_<scenario>.png for the others.

  /usr/bin/python3 tests/e2e/browser_e2e.py --url http://127.0.0.1:8080/ \\
      --screenshot /tmp/e2e.png --scenarios answer

Exit status: 0 on success, 1 when a check fails, 2 when the browser could
not be driven at all; when chromium or chromedriver is not installed 77
(skipped), or 1 under CI (tests/e2e/ci_policy.py).
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

from browser_support import (add_browser_args, browser_session,
                             install_error_hook, missing_browser_tools)
from ci_policy import skip_or_fail
from e2e_support import (
    CheckFailed,
    DriverError,
    log,
    metric,
    Metrics,
    Gateway,
    wait_specialists,
    open_page,
    ask,
    pick_specialist,
    card_of,
    wait_state,
    page_log,
    check_seqs,
    summarize,
)

DEFAULT_QUESTION = ('Assess the risk and AML compliance of account ACC-1042 '
                    'over the last 6 months')
DEFAULT_EXPECT = 'DataAnalyst,RiskAnalyst,ComplianceExpert'
SYNTHETIC = 'Synthetic'
SYNTHETIC_QUESTION = 'Run a synthetic load test and stream every update'
SCENARIOS = ('answer', 'resume', 'cancel')
# After the page sent the DELETE, how long Synthetic may still emit results
# that reach the page (cancel_grace_test holds the 100 ms bound, timed from
# the client's DELETE to the specialist's metrics showing it idle; this is
# the page's view, through a browser, on a busy machine).
STOP_AFTER_CANCEL_MS = 1000

def scenario_answer(driver, ctx):
    """A real question: the answer arrives, every card reaches 100 %."""
    args = ctx.args
    open_page(driver, ctx.url)
    ask(driver, args.question)
    started = time.monotonic()
    last = {}

    def answered(state):
        if state['status'] == 'failed' and not state['answer']:
            raise CheckFailed('the run failed before an answer arrived: ' +
                              summarize(state))
        return bool(state['answer'])

    state = wait_state(driver, '#answer to get text', answered, args.timeout,
                       last)
    log(f'answer after {time.monotonic() - started:.1f} s: '
        f'{state["answer"][:300]}')
    # The stream ends with `done` right after `complete`.
    state = wait_state(driver, 'the stream to end (done)',
                       lambda s: s['connection'] in ('closed', 'error'), 15,
                       last)

    problems = []
    if state['status'] != 'complete':
        problems.append(f'#status data-status is {state["status"]!r}, '
                        'expected "complete"')
    if not state['requestId']:
        problems.append('#request-id is empty')
    names = [c['name'] for c in state['cards']]
    for expected in [n for n in args.expect.split(',') if n]:
        if expected not in names:
            problems.append(f'no card for {expected} (cards: {names})')
    for card in state['cards']:
        if card['progress'] != '100':
            problems.append(f'{card["name"]} card shows data-progress='
                            f'{card["progress"]!r}, expected "100" '
                            f'(outcome {card["outcome"]!r}, alerts '
                            f'{card["alerts"]!r})')
        if card['outcome'] != 'ok':
            problems.append(f'{card["name"]} ended with outcome '
                            f'{card["outcome"]!r} ({card["alerts"]!r})')
    if state['pageErrors']:
        problems.append(f'script errors on the page: {state["pageErrors"]}')
    if problems:
        raise CheckFailed('; '.join(problems))
    log(f'request {state["requestId"]}: ' + ', '.join(
        f'{c["name"]} {c["progress"]}% ({c["toolCalls"]} tool calls)'
        for c in state['cards']))


def start_synthetic_run(driver, ctx, last):
    """Opens the page, picks Synthetic, asks; returns once it streams."""
    open_page(driver, ctx.url)
    pick_specialist(driver, SYNTHETIC)
    ask(driver, SYNTHETIC_QUESTION)

    def streaming(state):
        if state['status'] in ('failed', 'cancelled', 'complete'):
            raise CheckFailed('the run ended before the test could act: ' +
                              summarize(state))
        card = card_of(state, SYNTHETIC)
        return (state['requestId'] and state['connection'] == 'open' and
                card is not None and card['results'] >= 10)

    state = wait_state(driver, 'the Synthetic run to stream 10 results',
                       streaming, 30, last)
    names = [c['name'] for c in state['cards']]
    if names != [SYNTHETIC]:
        raise CheckFailed(f'only {SYNTHETIC} was picked, the page shows '
                          f'cards {names}')
    return state


def scenario_resume(driver, ctx):
    """The gateway is killed and restarted mid-run; the page resumes."""
    if ctx.gateway is None:
        raise CheckFailed('resume needs a gateway this script owns '
                          '(--gateway-bin)')
    m = ctx.metrics
    before = m.snapshot()
    last = {}
    state = start_synthetic_run(driver, ctx, last)
    rid = state['requestId']
    seen = max([r['seq'] or 0 for r in page_log(driver)], default=0)
    log(f'request {rid} streams (page at seq {seen}, '
        f'{card_of(state, SYNTHETIC)["results"]} results); killing the '
        'gateway')
    ctx.gateway.kill()
    # The page notices that its stream broke.
    state = wait_state(driver, 'the page to notice the lost gateway',
                       lambda s: s['connection'] != 'open', 10, last)
    log(f'page: connection={state["connection"]!r} '
        f'notice={state["notice"]!r}')
    if state['answer'] or state['status'] in ('complete', 'cancelled',
                                              'failed'):
        raise CheckFailed('the run had ended before the gateway was killed: '
                          + summarize(state))
    restarted = time.monotonic()
    ctx.gateway.start()

    state = wait_state(driver, 'the resumed run to complete',
                       lambda s: bool(s['answer']) and
                       s['connection'] in ('closed', 'error'),
                       ctx.args.timeout, last)
    log(f'complete {time.monotonic() - restarted:.1f} s after the restart')
    after = m.snapshot()

    def delta(name, **labels):
        full = 'agentstream_orchestrator_' + name
        return (metric(after, full, **labels) -
                metric(before, full, **labels))

    problems = []
    if state['status'] != 'complete' or state['answerOutcome'] != 'ok':
        problems.append(f'the page ends with status {state["status"]!r} and '
                        f'answer outcome {state["answerOutcome"]!r}, '
                        'expected complete / ok')
    if state['requestId'] != rid:
        problems.append(f'the request id changed from {rid} to '
                        f'{state["requestId"]}')
    card = card_of(state, SYNTHETIC)
    if card is None or card['progress'] != '100' or card['outcome'] != 'ok':
        problems.append(f'the Synthetic card is {card}')
    elif card['results'] != ctx.args.synthetic_count:
        problems.append(f'the Synthetic card shows {card["results"]} results,'
                        f' Synthetic sent {ctx.args.synthetic_count}')
    rows = page_log(driver)
    appended = int(delta('updates_total'))
    problems += check_seqs(rows, appended)
    partials = [r for r in rows if r['type'] == 'partial_result']
    if len(partials) != ctx.args.synthetic_count:
        problems.append(f'the page log holds {len(partials)} partial results,'
                        f' expected {ctx.args.synthetic_count}')
    resumed = [r['data'] for r in rows if r['type'] == 'connected' and
               r['data'].get('status') == 'resumed']
    if not resumed:
        problems.append('the page never got a resumed `connected`')
    elif any(not seen <= int(c.get('after_seq', 0)) < appended
             for c in resumed):
        problems.append(f'resumed after seqs '
                        f'{[c.get("after_seq") for c in resumed]}: expected '
                        f'at least {seen} (the page had it when the gateway '
                        f'was killed) and below {appended} (the last seq)')
    started = delta('runs_started_total')
    if started != 1:
        problems.append(f'the orchestrator started {started:g} runs, '
                        'expected exactly 1')
    calls = delta('specialist_calls_total', specialist=SYNTHETIC)
    if calls != 1:
        problems.append(f'Synthetic was called {calls:g} times, expected 1')
    resumes = m.gateway('resumes_total')
    if resumes < 1:
        problems.append(f'the new gateway counts resumes_total {resumes:g}')
    if delta('resumes_total') < 1:
        problems.append('the orchestrator counted no resume (Attach with '
                        'after_seq > 0)')
    if state['pageErrors']:
        problems.append(f'script errors on the page: {state["pageErrors"]}')
    if problems:
        raise CheckFailed('; '.join(problems) + f'; page: {summarize(state)}')
    log(f'request {rid}: seq 1..{appended} once each, '
        f'{card["results"]} Synthetic results, resumed after seq '
        f'{[c.get("after_seq") for c in resumed]}, 1 run started, gateway '
        f'resumes_total {resumes:g}')


def scenario_cancel(driver, ctx):
    """The Cancel button ends the run with the server's cancelled ending."""
    m = ctx.metrics
    before = m.snapshot()
    cancels_before = m.gateway('cancels_total')
    last = {}
    state = start_synthetic_run(driver, ctx, last)
    rid = state['requestId']
    if not state['cancelVisible']:
        raise CheckFailed('#cancel is hidden while the run streams')
    log(f'request {rid} streams ({card_of(state, SYNTHETIC)["results"]} '
        'results); clicking #cancel')
    clicked = time.monotonic()
    driver.s('POST', f'/element/{driver.find("#cancel")}/click', {})

    state = wait_state(driver, 'the cancelled ending',
                       lambda s: s['connection'] in ('closed', 'error'), 20,
                       last)
    took = time.monotonic() - clicked

    def read_probe():
        return driver.execute('return {clicks: window.__e2eCancelClicks || '
                              '[], fetches: window.__e2eFetches || []};')

    # The stream's cancelled ending can reach the page before the answer to
    # its DELETE does (both are on their way at once): wait for that answer
    # too, within a deadline, before judging it.
    probe = read_probe()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            f['method'] == 'DELETE' and f.get('end') is None
            for f in probe['fetches']):
        time.sleep(0.1)
        probe = read_probe()
    log(f'page ended {took:.1f} s after the WebDriver click: status '
        f'{state["status"]!r}, answer outcome {state["answerOutcome"]!r}')
    after = m.snapshot()
    rows = page_log(driver)

    def delta(name, **labels):
        full = 'agentstream_orchestrator_' + name
        return (metric(after, full, **labels) -
                metric(before, full, **labels))

    problems = []
    if state['status'] != 'cancelled':
        problems.append(f'#status data-status is {state["status"]!r}, '
                        'expected "cancelled"')
    # data-outcome of the answer card comes only from the server's
    # `complete` (the library's own ending after cancelGraceMs sets none).
    if state['answerOutcome'] != 'cancelled':
        problems.append(f'#answer-card data-outcome is '
                        f'{state["answerOutcome"]!r}, expected "cancelled" '
                        '(from the server\'s complete)')
    card = card_of(state, SYNTHETIC)
    if card is None or card['outcome'] != 'cancelled':
        problems.append(f'the Synthetic card is {card}, expected outcome '
                        'cancelled (its specialist_complete)')
    elif card['results'] >= ctx.args.synthetic_count:
        problems.append(f'the Synthetic card shows all {card["results"]} '
                        'results: the run was not cut short')
    # When the page asked, and the last partial result of Synthetic that
    # reached the page (its emitted_at_ns; same machine, same clock), timed
    # from when the page sent the DELETE.
    deletes = [f for f in probe['fetches'] if f['method'] == 'DELETE']
    stop_ms = None
    if len(probe['clicks']) != 1:
        problems.append(f'the page saw {len(probe["clicks"])} clicks on '
                        '#cancel, expected 1')
    if len(deletes) != 1 or deletes[0]['status'] != 202 or \
            deletes[0]['url'] != f'api/runs/{rid}':
        problems.append(f'the page\'s DELETE requests: {deletes}, expected '
                        f'one of api/runs/{rid} answered 202')
    elif probe['clicks']:
        d = deletes[0]
        emitted = [int(r['data'].get('emitted_at_ns') or 0) / 1e6
                   for r in rows if r['type'] == 'partial_result']
        if not emitted or not all(emitted):
            problems.append('the page log has partial results without '
                            'emitted_at_ns, or none: when Synthetic stopped '
                            'is not measured')
        else:
            stop_ms = max(emitted) - d['start']
            log(f'click -> DELETE sent {d["start"] - probe["clicks"][0]:.0f}'
                f' ms, answered 202 in {d["end"] - d["start"]:.0f} ms; the '
                f'last result reaching the page was emitted {stop_ms:.0f} ms '
                'after the DELETE was sent')
            if stop_ms > STOP_AFTER_CANCEL_MS:
                problems.append(f'Synthetic emitted results {stop_ms:.0f} ms '
                                'after the DELETE was sent (bound '
                                f'{STOP_AFTER_CANCEL_MS} ms)')
    types = [r['type'] for r in rows]
    for kind in ('specialist_complete', 'complete', 'done'):
        if kind not in types:
            problems.append(f'the page log has no {kind} (types: '
                            f'{sorted(set(types))})')
    completes = [r['data'] for r in rows if r['type'] == 'complete']
    if completes and completes[-1].get('outcome') != 'cancelled':
        problems.append(f'complete carries outcome '
                        f'{completes[-1].get("outcome")!r}')
    dones = [r['data'] for r in rows if r['type'] == 'done']
    if dones and dones[-1].get('status') != 'cancelled':
        problems.append(f'done carries status {dones[-1].get("status")!r}')
    problems += check_seqs(rows, int(delta('updates_total')))
    for name, want in (('runs_started_total', {}),
                       ('runs_cancelled_total', {'reason': 'request'})):
        got = delta(name, **want)
        if got != 1:
            problems.append(f'orchestrator {name}{want or ""} went up by '
                            f'{got:g}, expected 1')
    other = delta('runs_cancelled_total') - delta('runs_cancelled_total',
                                                  reason='request')
    if other:
        problems.append(f'{other:g} runs cancelled for another reason')
    cancels = m.gateway('cancels_total') - cancels_before
    if cancels != 1:
        problems.append(f'gateway cancels_total went up by {cancels:g}')
    if state['pageErrors']:
        problems.append(f'script errors on the page: {state["pageErrors"]}')
    if problems:
        raise CheckFailed('; '.join(problems) + f'; page: {summarize(state)}')
    log(f'request {rid}: cancelled by the server after '
        f'{card["results"]} of {ctx.args.synthetic_count} results, '
        f'{took:.1f} s after the click')


class Context:
    def __init__(self, args, url, gateway, metrics):
        self.args = args
        self.url = url
        self.gateway = gateway
        self.metrics = metrics


def screenshot_path(base, scenario):
    if scenario == 'answer':
        return base
    root, ext = os.path.splitext(base)
    return f'{root}_{scenario}{ext or ".png"}'


def main():
    parser = argparse.ArgumentParser(
        description='Drive the agentstream web client in headless Chromium.')
    parser.add_argument('--url',
                        help='the web client of a running gateway, e.g. '
                             'http://127.0.0.1:8080/ (or --gateway-bin)')
    parser.add_argument('--gateway-bin',
                        help='start (and for resume, kill and restart) this '
                             'gateway binary on --gateway-port')
    parser.add_argument('--gateway-port', type=int, default=0)
    parser.add_argument('--gateway-log', default='gateway.log',
                        help='where the owned gateway writes its log')
    parser.add_argument('--gateway-pid-file',
                        help='where to write the owned gateway\'s PID (each '
                             'time it starts)')
    parser.add_argument('--web-root',
                        help='the owned gateway\'s --web-root (default: its '
                             'own default, the web client of the source tree)')
    parser.add_argument('--orchestrator', default='127.0.0.1:50051',
                        help='the orchestrator the owned gateway uses')
    parser.add_argument('--orchestrator-metrics',
                        help='the orchestrator\'s /metrics URL')
    parser.add_argument('--scenarios', default=','.join(SCENARIOS),
                        help='comma-separated, of ' + ', '.join(SCENARIOS))
    parser.add_argument('--synthetic-count', type=int, default=90,
                        help='the partial results a Synthetic run sends '
                             '(the --count the system\'s Synthetic runs with)')
    parser.add_argument('--ready-timeout', type=float, default=60,
                        help='seconds to wait for the gateway and the '
                             'specialists')
    parser.add_argument('--screenshot', default='browser_e2e.png',
                        help='where to save the full-page PNG')
    parser.add_argument('--question', default=DEFAULT_QUESTION)
    parser.add_argument('--expect', default=DEFAULT_EXPECT,
                        help='comma-separated specialists that must have a '
                             'card at 100%%')
    parser.add_argument('--timeout', type=float, default=90,
                        help='seconds to wait for an answer')
    add_browser_args(parser)
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(',') if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown or not scenarios:
        parser.error(f'unknown scenarios {sorted(unknown)}')
    if bool(args.url) == bool(args.gateway_bin):
        parser.error('give exactly one of --url and --gateway-bin')
    if args.gateway_bin and not args.gateway_port:
        parser.error('--gateway-bin needs --gateway-port (a fixed port: the '
                     'page reconnects to the same URL)')
    if ({'resume', 'cancel'} & set(scenarios)) and \
            not args.orchestrator_metrics:
        parser.error('resume and cancel need --orchestrator-metrics')

    missing = missing_browser_tools(args)
    if missing:
        return skip_or_fail('browser_e2e', missing)

    # SIGTERM (e.g. a ctest timeout) still stops what this script started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix='agentstream-e2e-')
    gateway = None
    status = 0
    try:
        if args.gateway_bin:
            gateway = Gateway(args.gateway_bin, '127.0.0.1',
                              args.gateway_port, args.orchestrator,
                              args.gateway_log, args.web_root,
                              args.gateway_pid_file)
            gateway.start(timeout=args.ready_timeout)
            url = gateway.url
        else:
            url = args.url if args.url.endswith('/') else args.url + '/'
        want = set()
        if 'answer' in scenarios:
            want |= {n for n in args.expect.split(',') if n}
        if {'resume', 'cancel'} & set(scenarios):
            want.add(SYNTHETIC)
        wait_specialists(url, want, args.ready_timeout)
        log(f'system ready at {url}')
        metrics = Metrics(args.orchestrator_metrics, url + 'metrics') \
            if args.orchestrator_metrics else None
        ctx = Context(args, url, gateway, metrics)

        with browser_session(args, work) as driver:
            # The error hook before any of the page's scripts runs.
            install_error_hook(driver)
            for scenario in scenarios:
                if gateway is not None and not gateway.alive():
                    gateway.start()
                started = time.monotonic()
                try:
                    globals()['scenario_' + scenario](driver, ctx)
                    log(f'PASS {scenario} '
                        f'({time.monotonic() - started:.1f} s)')
                except CheckFailed as e:
                    log(f'FAIL {scenario}: {e}')
                    status = 1
                path = screenshot_path(args.screenshot, scenario)
                try:
                    driver.screenshot(path)
                    log(f'screenshot: {os.path.abspath(path)}')
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
        if gateway is not None:
            gateway.stop()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
