#!/usr/bin/python3
"""Chromium under chromedriver for the browser e2e scripts (browser_e2e,
auth_e2e, client_lib_e2e, replay_e2e, react/react_e2e), stdlib only: the
--chromium/--chromedriver flags, the check that both are installed, a
minimal W3C WebDriver client over urllib, and one session's whole life
(browser_session): chromedriver started in a process group of its own,
Chromium on a fresh profile, and on the way out the session deleted and the
group stopped by chromedriver's PID, never by name.

Scripts in subdirectories import it with tests/e2e on sys.path."""

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from e2e_support import (ELEMENT_KEY, HOOK_SCRIPT, CheckFailed, DriverError,
                         free_port, log, wait_for)

CHROMIUM_ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
    '--window-size=1400,1000',
]
# What to install when a tool is missing (Debian's package names).
BROWSER_PACKAGES = 'chromium chromium-driver'
# How much of chromedriver's log to show when the browser could not be
# driven: its last lines say why.
DRIVER_LOG_TAIL_BYTES = 3000


def add_browser_args(parser):
    """--chromium and --chromedriver (run_browser_e2e.sh passes both),
    defaulting to $AGENTSTREAM_CHROMIUM and $AGENTSTREAM_CHROMEDRIVER, then
    to Debian's paths (chromedriver: the one on PATH first)."""
    parser.add_argument('--chromium', default=os.environ.get(
        'AGENTSTREAM_CHROMIUM', '/usr/bin/chromium'),
        help='the Chromium binary (default: $AGENTSTREAM_CHROMIUM or '
             '/usr/bin/chromium)')
    parser.add_argument('--chromedriver', default=os.environ.get(
        'AGENTSTREAM_CHROMEDRIVER', shutil.which('chromedriver') or
        '/usr/bin/chromedriver'),
        help='the chromedriver binary (default: $AGENTSTREAM_CHROMEDRIVER, '
             'else the one on PATH, else /usr/bin/chromedriver)')


def missing_browser_tools(args, also=(), packages=''):
    """None when args.chromium and args.chromedriver are executable files
    and every (name, found) of `also` was found; else what is missing, as
    the message for ci_policy.skip_or_fail (packages: more to apt-get)."""
    missing = [tool for tool in (args.chromium, args.chromedriver)
               if not (os.path.isfile(tool) and os.access(tool, os.X_OK))]
    missing += [name for name, found in also if not found]
    if not missing:
        return None
    verb = 'is' if len(missing) == 1 else 'are'
    install = ' '.join(p for p in (BROWSER_PACKAGES, packages) if p)
    return (f'{", ".join(missing)} {verb} not installed (apt-get install '
            f'{install})')


@contextlib.contextmanager
def browser_session(args, work_dir):
    """Starts chromedriver (args.chromedriver; its log work_dir/
    chromedriver.log) and a Chromium session (args.chromium, profile
    work_dir/profile); yields the WebDriver. However the body ends, the
    session is deleted and chromedriver's process group (Chromium with it)
    stopped by its PID; when the browser could not be driven (a DriverError
    from the start or the body) the tail of chromedriver's log is logged
    after that. Exceptions propagate: the exit status is the caller's.
    work_dir is the caller's, removed by the caller after this ends.
    Chromium's own temporary files (org.chromium.Chromium.*, left behind
    when its processes are stopped) go to a TMPDIR of the session's,
    removed after the process group: short, since a unix socket's path is
    (a session's SingletonSocket lives there)."""
    driver_log = os.path.join(work_dir, 'chromedriver.log')
    proc = driver = None
    driver_failed = False
    browser_tmp = tempfile.mkdtemp(prefix='cr')
    try:
        proc, driver = start_chromedriver(args.chromedriver, driver_log,
                                          browser_tmp)
        driver.start_session(args.chromium, os.path.join(work_dir, 'profile'))
        yield driver
    except DriverError:
        driver_failed = True
        raise
    finally:
        if driver is not None:
            try:
                driver.delete_session()
            except DriverError as e:
                log(f'deleting the session failed: {e}')
        if proc is not None:
            stop_process_group(proc)
        shutil.rmtree(browser_tmp, ignore_errors=True)
        if driver_failed and os.path.exists(driver_log):
            with open(driver_log, 'rb') as f:
                tail = f.read()[-DRIVER_LOG_TAIL_BYTES:]
            log('chromedriver log (tail):\n' + tail.decode(errors='replace'))


def install_error_hook(driver):
    """Has HOOK_SCRIPT (e2e_support.py) run before any of each page's
    scripts (CDP); when chromedriver refuses, the pages install it after
    load (open_page and the like do either way)."""
    try:
        driver.s('POST', '/goog/cdp/execute', {
            'cmd': 'Page.addScriptToEvaluateOnNewDocument',
            'params': {'source': HOOK_SCRIPT}})
    except DriverError as e:
        log(f'the error hook is installed after load only: {e}')


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


def start_chromedriver(chromedriver, log_path, tmp_dir):
    """chromedriver, and the Chromium it starts, with TMPDIR=tmp_dir."""
    port = free_port()
    log_file = open(log_path, 'wb')
    proc = subprocess.Popen(
        [chromedriver, f'--port={port}', '--allowed-ips=127.0.0.1',
         '--allowed-origins=*'],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, 'TMPDIR': tmp_dir})
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
