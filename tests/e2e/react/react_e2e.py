#!/usr/bin/python3
"""The React hook's page in real Chromium, against the real system (ctest:
react_e2e; issue 12, "the React page with React from npm").

  1. npm installs react@18 and react-dom@18 into a temp dir and serves them as
     ES modules (vendor_react.py: their CommonJS development builds wrapped,
     unchanged, in Node's module wrapper), never the public CDN.
  2. A temp web root holds a copy of gateway/web, the vendor modules under
     /vendor/, and react.html (and the docs page of 5.) with its import map
     pointed there (the only change; vendor_react.local_page checks that
     the shipped map names https URLs for exactly those specifiers).
  3. deploy/local/launch.sh starts the specialists and the orchestrator on
     free loopback ports (--no-gateway), as run_browser_e2e.sh does; this
     script starts the gateway with --web-root on the temp dir. All are
     stopped by PID (the launcher stops what it started; the leftovers by
     the PIDs it recorded).
  4. Headless Chromium opens /react.html (React in StrictMode, development
     build), twice: "typed" types the ACC-1042 question and clicks Ask;
     "preset" opens /react.html?q=<the question>, so the hook mounts with it
     and StrictMode runs its effect twice (mount, unmount, mount). Each waits
     (bounded) for the run to end on the page: the hook's status ends `done`,
     the orchestrator's `complete`, every specialist card (at least
     DataAnalyst, RiskAnalyst, ComplianceExpert) shows data-progress="100"
     with outcome ok, the orchestrator counts exactly one run started (no
     duplicate run from StrictMode's double effects), and the page logged no
     error (React's development warnings included).
  5. "docs page": the minimal React page of docs/CLIENT.md, extracted as
     written (only its import map pointed at /vendor/), served at
     /react_minimal_from_docs.html: Ask, then the answer, every specialist
     at 100 %, "done · complete", one run, no error on the page.
  6. "switch and cancel": /react.html?specialists=Synthetic&q=... (the
     launcher runs Synthetic slowly, ~9 s a run, as run_browser_e2e.sh
     does); while it streams, a new question: the hook must close the first
     stream (the gateway counts a client disconnect and one stream open)
     and stream the second run; then Cancel: the hook ends `cancelled`, the
     orchestrator's status `cancelled`, and the gateway closes every stream.

Exit status: 0 pass, 1 a check failed (or the system did not start), 2 the
browser could not be driven; without chromium, chromedriver, node or npm, or
when npm cannot install React, 77 (skipped), or 1 under CI (tests/e2e/ci_policy.py).

  AGENTSTREAM_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/react/react_e2e.py
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(E2E))
sys.path.insert(0, E2E)
sys.path.insert(0, os.path.join(E2E, 'launcher'))

from browser_support import (  # noqa: E402
    add_browser_args, browser_session, install_error_hook,
    missing_browser_tools)
from ci_policy import skip_or_fail  # noqa: E402
from e2e_support import (  # noqa: E402
    ELEMENT_KEY, HOOK_SCRIPT, CheckFailed, DriverError, Gateway, Metrics, log,
    wait_for, wait_specialists)
from launcher_support import free_port_runs  # noqa: E402
import vendor_react  # noqa: E402

QUESTION = ('Assess the risk and AML compliance of account ACC-1042 over '
            'the last 6 months')
EXPECT = ('DataAnalyst', 'RiskAnalyst', 'ComplianceExpert')
BINARIES = ('gateway', 'orchestrator', 'data_analyst', 'risk_analyst',
            'compliance_expert', 'synthetic')
VENDOR_PREFIX = '/vendor/'
# Synthetic's --count and --rate (their environment variables, which no
# other binary reads), as run_browser_e2e.sh sets them: 90 results at 10 a
# second, so its runs stream for ~9 s, long enough to switch and cancel.
SYNTHETIC_COUNT = 90
SYNTHETIC_RATE = 10
SYNTHETIC = 'Synthetic'
SYNTHETIC_QUESTIONS = ('Run a synthetic load test and stream every update',
                       'Run a second synthetic load test')
# Where the test serves docs/CLIENT.md's minimal React page.
DOC_PAGE = 'react_minimal_from_docs.html'

# The page as the hook renders it, read in one round trip.
PAGE_SCRIPT = r"""
const q = (s) => document.querySelector(s);
const text = (s) => (q(s) ? q(s).textContent.trim() : null);
return {
  hookStatus: q('#hook-status') ? q('#hook-status').getAttribute('data-status') : null,
  orchestrator: q('#orchestrator') ? q('#orchestrator').getAttribute('data-status') : null,
  requestId: text('#request-id'),
  answer: text('#answer'),
  errors: text('#errors'),
  updates: text('#update-count'),
  cards: Array.from(document.querySelectorAll('.card')).map((c) => ({
    name: c.getAttribute('data-specialist'),
    progress: c.getAttribute('data-progress'),
    outcome: c.getAttribute('data-outcome'),
  })),
  pageErrors: window.__e2eErrors || [],
};
"""


def summarize(page):
    if not page:
        return '(nothing read)'
    cards = ', '.join(f'{c["name"]}={c["progress"]}%/{c["outcome"] or "-"}'
                      for c in page.get('cards', []))
    return (f'hook={page.get("hookStatus")!r} '
            f'orchestrator={page.get("orchestrator")!r} '
            f'request={page.get("requestId")!r} updates={page.get("updates")} '
            f'cards=[{cards}] errors={page.get("errors")!r} '
            f'page_errors={page.get("pageErrors")}')


class Launcher:
    """deploy/local/launch.sh --no-gateway, stopped by its PID."""

    def __init__(self, bin_dir, data_dir, log_path):
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        gw, orch, spec, metrics = free_port_runs(1, 1, 4, 5)
        self.gateway_port = gw
        self.orchestrator = f'127.0.0.1:{orch}'
        self.orchestrator_metrics = f'http://127.0.0.1:{metrics}/metrics'
        self.argv = [os.path.join(ROOT, 'deploy/local/launch.sh'),
                     '--bin-dir', bin_dir, '--data-dir', data_dir,
                     '--no-gateway', '--gateway-port', str(gw),
                     '--orchestrator-port', str(orch),
                     '--specialist-base-port', str(spec),
                     '--metrics-base-port', str(metrics)]

    def start(self, timeout):
        with open(self.log_path, 'wb') as log_file:
            self.proc = subprocess.Popen(
                self.argv, stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, 'AGENTSTREAM_COUNT': str(SYNTHETIC_COUNT),
                     'AGENTSTREAM_RATE': str(SYNTHETIC_RATE)})
        log(f'launcher pid {self.proc.pid}: orchestrator {self.orchestrator}')

        def ready():
            if self.proc.poll() is not None:
                raise CheckFailed(f'the launcher exited with '
                                  f'{self.proc.returncode}: {self.tail()}')
            with open(self.log_path, errors='replace') as f:
                return any(line.startswith('agentstream is running')
                           for line in f)

        wait_for('the orchestrator and specialists (launch.sh)', ready,
                 timeout)

    def tail(self):
        with open(self.log_path, errors='replace') as f:
            return ''.join(f.readlines()[-20:])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log('the launcher did not stop within 15 s; killing it')
                self.proc.kill()
                self.proc.wait(timeout=10)
        # What it left behind, by the PIDs it recorded ("PID NAME" lines).
        pids = os.path.join(self.data_dir, 'pids')
        if os.path.exists(pids):
            with open(pids) as f:
                for line in f:
                    field = line.split()[:1]
                    if field and field[0].isdigit():
                        try:
                            os.kill(int(field[0]), signal.SIGKILL)
                        except ProcessLookupError:
                            pass


def prepare_web_root(work):
    """gateway/web + React (npm-installed in work/npm) under /vendor/ + the
    local import map."""
    web_root = os.path.join(work, 'web')
    shutil.copytree(os.path.join(ROOT, 'gateway/web'), web_root)
    vendor_react.write_vendor_modules(
        os.path.join(work, 'npm', 'node_modules'),
        os.path.join(web_root, VENDOR_PREFIX.strip('/')))
    page = os.path.join(web_root, 'react.html')
    with open(page, encoding='utf-8') as f:
        html = f.read()
    with open(page, 'w', encoding='utf-8') as f:
        f.write(vendor_react.local_page(html, VENDOR_PREFIX))
    with open(os.path.join(ROOT, 'docs/CLIENT.md'), encoding='utf-8') as f:
        doc = doc_page(f.read())
    with open(os.path.join(web_root, DOC_PAGE), 'w', encoding='utf-8') as f:
        f.write(vendor_react.local_page(doc, VENDOR_PREFIX))
    return web_root


def doc_page(markdown):
    """The first html block under docs/CLIENT.md's "A minimal React page"."""
    match = re.search(r'^### A minimal React page\n.*?^```html\n(.*?)^```$',
                      markdown, re.S | re.M)
    if not match:
        raise ValueError('docs/CLIENT.md: no html block under "### A minimal '
                         'React page"')
    return match.group(1)


# The minimal React page of docs/CLIENT.md, read in one round trip.
DOC_SCRIPT = r"""
const q = (s) => document.querySelector(s);
return {
  status: q('#status') ? q('#status').textContent.trim() : null,
  answer: q('#answer') ? q('#answer').textContent.trim() : null,
  items: Array.from(document.querySelectorAll('li')).map((li) => ({
    text: li.textContent.trim(), progress: li.getAttribute('data-progress')})),
  pageErrors: window.__e2eErrors || [],
};
"""


def run_doc_page(driver, url, metrics, timeout):
    """docs/CLIENT.md's minimal React page, as written: click Ask (its
    input holds the ACC-1042 question); returns the problems found."""
    runs_before = metrics.orchestrator('runs_started_total')
    driver.s('POST', '/url', {'url': url + DOC_PAGE}, timeout=60)
    driver.execute(HOOK_SCRIPT + 'return true;')
    last = {}

    def read():
        page = driver.execute(DOC_SCRIPT)
        last.clear()
        last.update(page)
        return page

    try:
        button = wait_for('the form of the minimal React page',
                          lambda: driver.execute(
                              "return document.querySelector('form button')"
                              " || null;"), 30)
        typed = driver.execute(
            "return document.querySelector('input[name=q]').value;")
        if typed != QUESTION:
            raise CheckFailed(f'the input holds {typed!r}, expected the '
                              'ACC-1042 question')
        driver.s('POST', f'/element/{button[ELEMENT_KEY]}/click', {})
        log(f'asked on {DOC_PAGE}: {QUESTION}')
        page = wait_for('#status to start with "done"',
                        lambda: (read()['status'] or '').startswith(
                            ('done', 'error', 'cancelled')) and last,
                        timeout)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; page: {last or read()}') from None
    log(f'{DOC_PAGE}: {page["status"]!r}, {page["items"]}')
    problems = []
    if page['status'] != 'done · complete':
        problems.append(f'#status {page["status"]!r}, expected '
                        '"done · complete"')
    if not page['answer']:
        problems.append('#answer is empty')
    for name in EXPECT:
        if not any(name in i['text'] or name in i['text'].replace(' ', '')
                   for i in page['items']):
            problems.append(f'no item for {name}: {page["items"]}')
    for item in page['items']:
        if item['progress'] != '100':
            problems.append(f'{item["text"]!r}: data-progress '
                            f'{item["progress"]!r}, expected "100"')
    if page['pageErrors']:
        problems.append(f'errors on the page: {page["pageErrors"]}')
    runs = int(metrics.orchestrator('runs_started_total') - runs_before)
    if runs != 1:
        problems.append(f'the orchestrator started {runs} runs, expected 1')
    return problems


def run_page(driver, url, metrics, timeout, preset):
    """Asks ACC-1042 on /react.html: typed into the form, or (preset) through
    /react.html?q=..., which mounts the hook with the question, so that
    StrictMode runs its effect twice; returns the problems found."""
    page_url = url + 'react.html'
    if preset:
        page_url += '?q=' + urllib.parse.quote(QUESTION)
    runs_before = metrics.orchestrator('runs_started_total')
    driver.s('POST', '/url', {'url': page_url}, timeout=60)
    driver.execute(HOOK_SCRIPT + 'return true;')
    last = {}

    def read():
        page = driver.execute(PAGE_SCRIPT)
        last.clear()
        last.update(page)
        return page

    try:
        wait_for('React to render the form (#question, #ask)',
                 lambda: driver.execute(
                     "return !!document.querySelector('#question') && "
                     "!!document.querySelector('#ask');"), 30)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; page: {summarize(read())}') from None
    if preset:
        log(f'opened {page_url}')
    else:
        if read()['hookStatus'] != 'idle':
            raise CheckFailed(f'before asking: {summarize(last)}')
        field = driver.find('#question')
        driver.s('POST', f'/element/{field}/clear', {})
        driver.s('POST', f'/element/{field}/value', {'text': QUESTION})
        typed = driver.execute(
            "return document.querySelector('#question').value;")
        if typed != QUESTION:
            raise CheckFailed(f'#question holds {typed!r} after typing')
        driver.s('POST', f'/element/{driver.find("#ask")}/click', {})
        log(f'asked: {QUESTION}')
    started = time.monotonic()

    def ended():
        page = read()
        if page['hookStatus'] in ('error', 'cancelled'):
            raise CheckFailed(f'the hook ended {page["hookStatus"]!r}: '
                              f'{summarize(page)}')
        return page if page['hookStatus'] == 'done' else None

    try:
        page = wait_for('the hook to reach status done', ended, timeout)
    except CheckFailed as e:
        if 'timed out' in str(e):
            raise CheckFailed(f'{e}; page: {summarize(last)}') from None
        raise
    log(f'done after {time.monotonic() - started:.1f} s: {summarize(page)}')
    log(f'answer: {(page["answer"] or "")[:300]}')

    problems = []
    if not page['answer']:
        problems.append('#answer is empty')
    if page['orchestrator'] != 'complete':
        problems.append(f'orchestrator status {page["orchestrator"]!r}, '
                        'expected "complete"')
    if not (page['requestId'] or '').strip():
        problems.append('#request-id is empty')
    names = [c['name'] for c in page['cards']]
    for name in EXPECT:
        if name not in names:
            problems.append(f'no card for {name} (cards: {names})')
    for card in page['cards']:
        if card['progress'] != '100' or card['outcome'] != 'ok':
            problems.append(f'{card["name"]} card: data-progress='
                            f'{card["progress"]!r}, outcome '
                            f'{card["outcome"]!r} (expected "100", "ok")')
    if page['pageErrors']:
        problems.append(f'errors on the page: {page["pageErrors"]}')
    runs = int(metrics.orchestrator('runs_started_total') - runs_before)
    if runs != 1:
        problems.append(f'the orchestrator started {runs} runs for one '
                        'question, expected 1 (StrictMode double effects?)')
    return problems


def run_switch_and_cancel(driver, url, metrics, timeout):
    """A slow Synthetic run; a new question mid-run (the hook must close the
    first stream: the gateway's streams_open drops back to 1); then Cancel
    (the hook ends `cancelled`); returns the problems found."""
    page_url = (url + 'react.html?specialists=' + SYNTHETIC + '&q=' +
                urllib.parse.quote(SYNTHETIC_QUESTIONS[0]))
    disconnects_before = metrics.gateway('client_disconnects_total')
    driver.s('POST', '/url', {'url': page_url}, timeout=60)
    driver.execute(HOOK_SCRIPT + 'return true;')
    last = {}

    def streaming(not_request=None):
        def check():
            page = driver.execute(PAGE_SCRIPT)
            last.clear()
            last.update(page)
            if page['hookStatus'] in ('done', 'error', 'cancelled'):
                raise CheckFailed(f'the run ended early: {summarize(page)}')
            cards = [c for c in page['cards'] if c['name'] == SYNTHETIC]
            return (page if page['hookStatus'] == 'streaming' and
                    page['requestId'] and page['requestId'] != not_request and
                    cards and int(cards[0]['progress'] or 0) > 0 else None)
        return check

    try:
        first = wait_for('the Synthetic run to stream', streaming(), 30)
        log(f'streaming {first["requestId"]}; asking a new question')
        field = driver.find('#question')
        driver.s('POST', f'/element/{field}/clear', {})
        driver.s('POST', f'/element/{field}/value',
                 {'text': SYNTHETIC_QUESTIONS[1]})
        driver.s('POST', f'/element/{driver.find("#ask")}/click', {})
        second = wait_for('the second run to stream',
                          streaming(first['requestId']), 30)
        log(f'streaming {second["requestId"]}')
        wait_for('the gateway to see one stream open (the first closed)',
                 lambda: metrics.gateway('streams_open') == 1, 15)
        if metrics.gateway('client_disconnects_total') <= disconnects_before:
            raise CheckFailed('the gateway counted no client disconnect '
                              'when the question changed')
        driver.s('POST', f'/element/{driver.find("#cancel")}/click', {})
        log('clicked Cancel')

        def cancelled():
            page = driver.execute(PAGE_SCRIPT)
            last.clear()
            last.update(page)
            if page['hookStatus'] in ('done', 'error'):
                raise CheckFailed(f'expected cancelled: {summarize(page)}')
            return page if page['hookStatus'] == 'cancelled' else None

        page = wait_for('the hook to reach status cancelled', cancelled,
                        timeout)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; page: {summarize(last)}') from None
    log(f'cancelled: {summarize(page)}')
    problems = []
    if page['orchestrator'] != 'cancelled':
        problems.append(f'orchestrator status {page["orchestrator"]!r}, '
                        'expected "cancelled"')
    if page['pageErrors']:
        problems.append(f'errors on the page: {page["pageErrors"]}')
    try:
        wait_for('the gateway to close every stream',
                 lambda: metrics.gateway('streams_open') == 0, 15)
    except CheckFailed as e:
        problems.append(str(e))
    return problems


def run_scenarios(driver, url, metrics, timeout):
    """Steps 4 to 6 of the module's docstring, in order; the first that
    fails raises CheckFailed."""
    for scenario, preset in (('typed', False), ('preset', True)):
        problems = run_page(driver, url, metrics, timeout, preset)
        if problems:
            raise CheckFailed(f'{scenario}: ' + '; '.join(problems))
        log(f'PASS {scenario}')
    problems = run_doc_page(driver, url, metrics, timeout)
    if problems:
        raise CheckFailed('docs page: ' + '; '.join(problems))
    log('PASS docs page')
    problems = run_switch_and_cancel(driver, url, metrics, timeout)
    if problems:
        raise CheckFailed('switch and cancel: ' + '; '.join(problems))
    log('PASS switch and cancel')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--bin-dir',
                        default=os.environ.get('AGENTSTREAM_BIN_DIR', ''))
    add_browser_args(parser)
    parser.add_argument('--artifacts', default=os.environ.get(
        'AGENTSTREAM_E2E_ARTIFACTS', os.path.join(os.getcwd(),
                                                  'e2e-artifacts')))
    parser.add_argument('--ready-timeout', type=float, default=float(
        os.environ.get('AGENTSTREAM_E2E_READY_S', '240')))
    parser.add_argument('--timeout', type=float, default=90,
                        help='seconds for the run to end on the page')
    parser.add_argument('--npm-timeout', type=float, default=180)
    args = parser.parse_args()

    missing = missing_browser_tools(
        args, also=(('node', shutil.which('node')),
                    ('npm', shutil.which('npm'))), packages='nodejs npm')
    if missing:
        return skip_or_fail('react_e2e', missing)
    if not args.bin_dir or not all(os.access(os.path.join(args.bin_dir, b),
                                             os.X_OK) for b in BINARIES):
        log(f'FAIL: the binaries {BINARIES} are not built in '
            f'{args.bin_dir!r} (AGENTSTREAM_BIN_DIR)')
        return 1

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.makedirs(args.artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix='agentstream-react-e2e-')
    data_dir = os.path.join(work, 'data')
    os.makedirs(os.path.join(data_dir, 'logs'))
    launcher = gateway = None
    status = 0
    try:
        try:
            versions = vendor_react.npm_install(os.path.join(work, 'npm'),
                                                args.npm_timeout)
        except (subprocess.SubprocessError, OSError) as e:
            # React is this test's dependency, as Chromium is: a registry
            # that cannot be reached skips, or fails under CI.
            out = (getattr(e, 'stdout', None) or b'')[-2000:]
            what = ' '.join(vendor_react.PACKAGES)
            status = skip_or_fail(
                'react_e2e', f'npm install {what} failed: {e} '
                f'{out.decode(errors="replace")}')
            return status
        log(f'npm: react {versions["react"]}, '
            f'react-dom {versions["react-dom"]}')
        try:
            web_root = prepare_web_root(work)
        except (subprocess.SubprocessError, OSError, ValueError) as e:
            raise CheckFailed(f'React from npm could not be served as ES '
                              f'modules: {e}') from None
        launcher = Launcher(args.bin_dir, data_dir,
                            os.path.join(args.artifacts, 'react_launch.log'))
        launcher.start(args.ready_timeout)
        gateway = Gateway(os.path.join(args.bin_dir, 'gateway'), '127.0.0.1',
                          launcher.gateway_port, launcher.orchestrator,
                          os.path.join(data_dir, 'logs', 'gateway.log'),
                          web_root)
        gateway.start()
        wait_specialists(gateway.url, set(EXPECT) | {SYNTHETIC},
                         args.ready_timeout)
        metrics = Metrics(launcher.orchestrator_metrics,
                          gateway.url + 'metrics')
        with browser_session(args, work) as driver:
            # The error hook before any of the page's scripts runs.
            install_error_hook(driver)
            try:
                run_scenarios(driver, gateway.url, metrics, args.timeout)
            finally:
                shot = os.path.join(args.artifacts, 'react_e2e.png')
                try:
                    driver.screenshot(shot)
                    log(f'screenshot: {shot}')
                except DriverError as e:
                    log(f'could not save the screenshot: {e}')
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
        if launcher is not None:
            launcher.stop()
        if status != 0 and launcher is not None:
            dest = os.path.join(args.artifacts, 'react_logs')
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(os.path.join(data_dir, 'logs'), dest)
            log(f'process logs: {dest}/')
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
