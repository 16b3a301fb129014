#!/usr/bin/python3
"""Browser end-to-end test of the agentstream web client, stdlib only.

Drives Debian's headless Chromium through chromedriver (W3C WebDriver over
HTTP, spoken with urllib): opens the web client at --url, types a question
into #question, clicks #send, waits (bounded) until #answer has text, and
checks that the run completed and that every activated specialist's card
(at least the --expect ones) shows data-progress="100". Saves a full-page
screenshot to --screenshot (also on failure). chromedriver and the Chromium
it starts are ended by the PID (process group) this script started.

  /usr/bin/python3 tests/e2e/browser_e2e.py --url http://127.0.0.1:8080/ \
      --screenshot /tmp/e2e.png

Exit status: 0 on success, 1 when a check fails, 2 when the browser could
not be driven at all, 77 when chromium or chromedriver is not installed.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

DEFAULT_QUESTION = ('Assess the risk and AML compliance of account ACC-1042 '
                    'over the last 6 months')
DEFAULT_EXPECT = 'DataAnalyst,RiskAnalyst,ComplianceExpert'
CHROMIUM_ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
    '--window-size=1400,1000',
]
# How W3C WebDriver names an element reference in JSON.
ELEMENT_KEY = 'element-6066-11e4-a52e-4f735466cecf'

# What the page shows, read in one round trip.
STATE_SCRIPT = r"""
const q = (s) => document.querySelector(s);
const answer = q('#answer');
const status = q('#status');
return {
  answer: answer ? answer.textContent.trim() : null,
  status: status ? status.getAttribute('data-status') : null,
  requestId: q('#request-id') ? q('#request-id').textContent.trim() : null,
  connection: q('#connection') ? q('#connection').getAttribute('data-connection') : null,
  runErrors: q('#run-errors') && !q('#run-errors').hidden ? q('#run-errors').textContent.trim() : '',
  statusMessage: q('#status-message') ? q('#status-message').textContent.trim() : '',
  cards: Array.from(document.querySelectorAll('.specialist-card')).map((c) => ({
    name: c.getAttribute('data-specialist'),
    progress: c.getAttribute('data-progress'),
    outcome: c.getAttribute('data-outcome'),
    alerts: c.querySelector('.alerts') ? c.querySelector('.alerts').innerText.replace(/\s+/g, ' ').trim() : '',
    toolCalls: c.querySelectorAll('.tool-call').length,
  })),
  pageErrors: window.__e2eErrors || [],
};
"""

# Records uncaught page errors so the test can report them.
ERROR_HOOK_SCRIPT = r"""
window.__e2eErrors = window.__e2eErrors || [];
window.addEventListener('error', (e) => {
  if (e.message) window.__e2eErrors.push(String(e.message));
});
window.addEventListener('unhandledrejection', (e) => {
  window.__e2eErrors.push('unhandled rejection: ' + String(e.reason));
});
return true;
"""


class CheckFailed(Exception):
    """A check of the page failed (exit 1)."""


class DriverError(Exception):
    """The browser could not be driven (exit 2)."""


def log(msg):
    print(f'[browser_e2e] {msg}', flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class WebDriver:
    """A minimal W3C WebDriver client over urllib."""

    def __init__(self, base):
        self.base = base.rstrip('/')
        self.session = None

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={'Content-Type':
                                              'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = json.loads(resp.read() or b'{}')
        except urllib.error.HTTPError as e:
            try:
                payload = json.loads(e.read() or b'{}')
                value = payload.get('value', {})
                detail = f"{value.get('error')}: {value.get('message')}"
            except (ValueError, AttributeError):
                detail = str(e)
            raise DriverError(f'{method} {path}: HTTP {e.code}: '
                              f'{detail[:500]}') from None
        except (urllib.error.URLError, OSError) as e:
            raise DriverError(f'{method} {path}: {e}') from None
        return payload.get('value')

    def s(self, method, path, body=None, timeout=30):
        return self.call(method, f'/session/{self.session}{path}', body,
                         timeout)

    def start_session(self, binary, user_data_dir):
        caps = {
            'capabilities': {
                'alwaysMatch': {
                    'browserName': 'chrome',
                    'pageLoadStrategy': 'normal',
                    'goog:chromeOptions': {
                        'binary': binary,
                        'args': CHROMIUM_ARGS +
                                [f'--user-data-dir={user_data_dir}'],
                    },
                },
            },
        }
        value = self.call('POST', '/session', caps, timeout=60)
        self.session = value['sessionId']
        return value

    def delete_session(self):
        if self.session:
            try:
                self.call('DELETE', f'/session/{self.session}', timeout=15)
            finally:
                self.session = None

    def find(self, css):
        value = self.s('POST', '/element', {'using': 'css selector',
                                            'value': css})
        return value[ELEMENT_KEY]

    def execute(self, script, *args):
        return self.s('POST', '/execute/sync', {'script': script,
                                                'args': list(args)})

    def screenshot(self, path):
        """A full-page PNG (CDP), or the viewport if CDP is refused."""
        png = None
        try:
            metrics = self.s('POST', '/goog/cdp/execute', {
                'cmd': 'Page.getLayoutMetrics', 'params': {}})
            size = metrics.get('cssContentSize') or metrics['contentSize']
            width = max(1, int(size['width']))
            height = max(1, min(int(size['height']), 12000))
            shot = self.s('POST', '/goog/cdp/execute', {
                'cmd': 'Page.captureScreenshot',
                'params': {'format': 'png', 'captureBeyondViewport': True,
                           'clip': {'x': 0, 'y': 0, 'width': width,
                                    'height': height, 'scale': 1}}})
            png = shot['data']
        except (DriverError, KeyError, TypeError):
            png = self.s('GET', '/screenshot')
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(base64.b64decode(png))


def wait_for(what, fn, timeout, interval=0.25):
    """Polls fn() until it returns a truthy value; bounded by timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except DriverError as e:
            last_error = e
        time.sleep(interval)
    raise CheckFailed(f'timed out after {timeout:.0f} s waiting for {what}' +
                      (f' (last error: {last_error})' if last_error else ''))


def start_chromedriver(chromedriver, log_path):
    port = free_port()
    log_file = open(log_path, 'wb')
    proc = subprocess.Popen(
        [chromedriver, f'--port={port}', '--allowed-ips=127.0.0.1',
         '--allowed-origins=*'],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    log_file.close()
    driver = WebDriver(f'http://127.0.0.1:{port}')

    def ready():
        if proc.poll() is not None:
            raise DriverError(f'chromedriver exited with {proc.returncode}')
        try:
            return driver.call('GET', '/status', timeout=2).get('ready')
        except DriverError:
            return False

    try:
        wait_for('chromedriver to be ready', ready, 20)
    except (CheckFailed, DriverError):
        stop_process_group(proc)
        raise DriverError('chromedriver did not become ready; see ' + log_path)
    return proc, driver


def stop_process_group(proc):
    """Ends chromedriver and its children (Chromium) by the group we made."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    # Chromium's own processes may outlive chromedriver for a moment.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)


def check_page(driver, args):
    """The test itself. Raises CheckFailed with a clear message."""
    driver.s('POST', '/url', {'url': args.url}, timeout=60)
    wait_for('#question and #send on the page',
             lambda: driver.execute(
                 "return !!document.querySelector('#question') && "
                 "!!document.querySelector('#send');"), 20)
    driver.execute(ERROR_HOOK_SCRIPT)
    initial = driver.execute(STATE_SCRIPT)
    if initial['answer']:
        raise CheckFailed(f'#answer has text before anything was asked: '
                          f'{initial["answer"][:200]!r}')

    question = driver.find('#question')
    driver.s('POST', f'/element/{question}/clear', {})
    driver.s('POST', f'/element/{question}/value', {'text': args.question})
    typed = driver.execute("return document.querySelector('#question').value;")
    if typed != args.question:
        raise CheckFailed(f'#question holds {typed!r} after typing')
    driver.s('POST', f'/element/{driver.find("#send")}/click', {})
    log(f'asked: {args.question}')

    started = time.monotonic()
    last = {}

    def answered():
        state = driver.execute(STATE_SCRIPT)
        last.update(state)
        if state['status'] == 'failed' and not state['answer']:
            raise CheckFailed('the run failed before an answer arrived: ' +
                              summarize(state))
        return state if state['answer'] else None

    try:
        state = wait_for('#answer to get text', answered, args.timeout)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; page: {summarize(last)}') from None
    log(f'answer after {time.monotonic() - started:.1f} s: '
        f'{state["answer"][:300]}')

    # The stream ends with `done` right after `complete`; give the page a
    # moment to settle before judging the cards.
    def settled():
        s = driver.execute(STATE_SCRIPT)
        last.update(s)
        return s if s['connection'] in ('closed', 'error') else None

    try:
        state = wait_for('the stream to end (done)', settled, 15)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; page: {summarize(last)}') from None

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


def summarize(state):
    if not state:
        return '(no state read)'
    cards = ', '.join(f'{c["name"]}={c["progress"]}%/{c["outcome"] or "-"}'
                      for c in state.get('cards', []))
    return (f'status={state.get("status")!r} '
            f'connection={state.get("connection")!r} '
            f'message={state.get("statusMessage")!r} '
            f'request={state.get("requestId")!r} cards=[{cards}] '
            f'errors={state.get("runErrors")!r} '
            f'page_errors={state.get("pageErrors")}')


def main():
    parser = argparse.ArgumentParser(
        description='Drive the agentstream web client in headless Chromium.')
    parser.add_argument('--url', required=True,
                        help='the web client, e.g. http://127.0.0.1:8080/')
    parser.add_argument('--screenshot', default='browser_e2e.png',
                        help='where to save the full-page PNG')
    parser.add_argument('--question', default=DEFAULT_QUESTION)
    parser.add_argument('--expect', default=DEFAULT_EXPECT,
                        help='comma-separated specialists that must have a '
                             'card at 100%%')
    parser.add_argument('--timeout', type=float, default=90,
                        help='seconds to wait for the answer')
    parser.add_argument('--chromium', default=os.environ.get(
        'AGENTSTREAM_CHROMIUM', '/usr/bin/chromium'))
    parser.add_argument('--chromedriver', default=os.environ.get(
        'AGENTSTREAM_CHROMEDRIVER', shutil.which('chromedriver') or
        '/usr/bin/chromedriver'))
    args = parser.parse_args()

    for tool in (args.chromium, args.chromedriver):
        if not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
            log(f'SKIP: {tool} is not installed (apt-get install chromium '
                'chromium-driver)')
            return 77

    work = tempfile.mkdtemp(prefix='agentstream-e2e-')
    driver_log = os.path.join(work, 'chromedriver.log')
    proc = None
    driver = None
    status = 0
    try:
        proc, driver = start_chromedriver(args.chromedriver, driver_log)
        driver.start_session(args.chromium, os.path.join(work, 'profile'))
        try:
            check_page(driver, args)
            log('PASS')
        except CheckFailed as e:
            log(f'FAIL: {e}')
            status = 1
        try:
            driver.screenshot(args.screenshot)
            log(f'screenshot: {os.path.abspath(args.screenshot)}')
        except DriverError as e:
            log(f'could not save the screenshot: {e}')
    except DriverError as e:
        log(f'ERROR: could not drive the browser: {e}')
        status = 2
    finally:
        if driver is not None:
            try:
                driver.delete_session()
            except DriverError as e:
                log(f'deleting the session failed: {e}')
        if proc is not None:
            stop_process_group(proc)
        if status == 2 and os.path.exists(driver_log):
            with open(driver_log, 'rb') as f:
                tail = f.read()[-3000:].decode(errors='replace')
            log('chromedriver log (tail):\n' + tail)
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
