#!/usr/bin/python3
"""Support for the browser e2e scripts (browser_e2e.py and its kin): the
exceptions that decide their exit status, bounded waits, the gateway a
script owns, Prometheus metrics, and reading the page's state. Chromium and
chromedriver themselves: browser_support.py."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

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
  answerOutcome: q('#answer-card') ? q('#answer-card').getAttribute('data-outcome') : null,
  cancelVisible: q('#cancel') ? !q('#cancel').hidden : false,
  runErrors: q('#run-errors') && !q('#run-errors').hidden ? q('#run-errors').textContent.trim() : '',
  statusMessage: q('#status-message') ? q('#status-message').textContent.trim() : '',
  notice: q('#stream-notice') && !q('#stream-notice').hidden ? q('#stream-notice').textContent.trim() : '',
  cards: Array.from(document.querySelectorAll('.specialist-card')).map((c) => ({
    name: c.getAttribute('data-specialist'),
    progress: c.getAttribute('data-progress'),
    outcome: c.getAttribute('data-outcome'),
    alerts: c.querySelector('.alerts') ? c.querySelector('.alerts').innerText.replace(/\s+/g, ' ').trim() : '',
    toolCalls: c.querySelectorAll('.tool-call').length,
    results: c.querySelectorAll('.results .result').length,
  })),
  pageErrors: window.__e2eErrors || [],
};
"""

# The page's raw event log (#log-body): one row per update the page applied.
LOG_SCRIPT = r"""
return Array.from(document.querySelectorAll('#log-body .log-row')).map((r) => {
  const seq = r.querySelector('.log-seq');
  const type = r.getAttribute('data-type');
  const pre = r.querySelector('pre.json');
  return {
    type,
    seq: seq ? seq.textContent.trim() : '',
    data: type === 'connected' || type === 'done' || type === 'error' ||
        type === 'complete' || type === 'specialist_complete' ||
        type === 'partial_result' ? (pre ? pre.textContent : '') : '',
  };
});
"""

# Records uncaught page errors (and the page's own console.error calls) so
# the test can report them, and for the cancel scenario when #cancel was
# clicked and what the page's fetch() calls did (epoch ms). Installed before
# the page's scripts run (CDP) when chromedriver allows it, else right after
# the page loaded. It watches the page; it changes nothing the page does.
HOOK_SCRIPT = r"""
const e2eNow = () => performance.timeOrigin + performance.now();
if (!window.__e2eFetches) {
  window.__e2eFetches = [];
  window.__e2eCancelClicks = [];
  document.addEventListener('click', (e) => {
    if (e.target && e.target.closest && e.target.closest('#cancel')) {
      window.__e2eCancelClicks.push(e2eNow());
    }
  }, true);
  const realFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const entry = {url: String(input), method: (init && init.method) || 'GET',
                   start: e2eNow(), end: null, status: null};
    window.__e2eFetches.push(entry);
    const p = realFetch(input, init);
    p.then((r) => { entry.end = e2eNow(); entry.status = r.status; },
           () => { entry.end = e2eNow(); });
    return p;
  };
}
if (!window.__e2eErrors) {
  window.__e2eErrors = [];
  window.addEventListener('error', (e) => {
    if (e.message) window.__e2eErrors.push(String(e.message));
  });
  window.addEventListener('unhandledrejection', (e) => {
    window.__e2eErrors.push('unhandled rejection: ' + String(e.reason));
  });
  const consoleError = console.error.bind(console);
  console.error = (...args) => {
    window.__e2eErrors.push('console.error: ' + args.map(String).join(' '));
    consoleError(...args);
  };
}
"""

class CheckFailed(Exception):
    """A check of the page failed (exit 1)."""


class DriverError(Exception):
    """The browser could not be driven (exit 2)."""


# The tag of log(): the script that runs (client_lib_e2e.py sets its own).
LOG_TAG = 'browser_e2e'


def log(msg):
    print(f'[{LOG_TAG}] {msg}', flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


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


# ---------------------------------------------------------------------------
# The system around the page: metrics and a gateway this script owns.

METRIC_LINE = re.compile(
    r'^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def http_get(url, timeout=5):
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b''


class Samples(dict):
    """{(name, frozenset(labels)): value}, and the families declared."""

    def __init__(self):
        super().__init__()
        self.families = set()


def read_metrics(url):
    """Prometheus text at url -> Samples. An endpoint that does not answer
    200, or a sample that does not parse, is a CheckFailed: never no
    samples, which would read as zeros."""
    status, body = http_get(url)
    if status != 200:
        raise CheckFailed(f'GET {url} answered {status or "nothing"}')
    samples = Samples()
    for line in body.decode(errors='replace').splitlines():
        if line.startswith('# TYPE '):
            samples.families.add(line.split()[2])
        if not line or line.startswith('#'):
            continue
        m = METRIC_LINE.match(line.strip())
        try:
            if not m:
                raise ValueError(line)
            labels = frozenset(LABEL.findall(m.group(2) or ''))
            samples[(m.group(1), labels)] = float(m.group(3))
        except ValueError as e:
            raise CheckFailed(f'{url}: unparsable sample {line!r}') from e
    return samples


def metric(samples, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`: 0 when
    there are none but the family is declared (a labelled counter is
    rendered once counted); a family the exporter does not declare is a
    CheckFailed (a misspelt or removed metric is not a zero)."""
    if name not in samples.families:
        raise CheckFailed(f'no metric family {name} (declared: '
                          f'{sorted(samples.families)})')
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items()
               if n == name and want <= set(ls))


class Metrics:
    """Reads the orchestrator's and the gateway's counters."""

    def __init__(self, orchestrator_url, gateway_url):
        self.orchestrator_url = orchestrator_url
        self.gateway_url = gateway_url

    def orchestrator(self, name, **labels):
        return metric(read_metrics(self.orchestrator_url),
                      'agentstream_orchestrator_' + name, **labels)

    def snapshot(self):
        return read_metrics(self.orchestrator_url)

    def gateway(self, name, **labels):
        return metric(read_metrics(self.gateway_url),
                      'agentstream_gateway_' + name, **labels)


class Gateway:
    """A gateway process this script starts, kills and restarts by PID."""

    def __init__(self, binary, host, port, orchestrator, log_path,
                 web_root=None, pid_file=None, extra_args=(),
                 ready_path='readyz'):
        self.binary = binary
        # What start() waits for: /readyz needs a token under --auth
        # (docs/SECURITY.md "Scopes"), /healthz never does.
        self.ready_path = ready_path
        self.extra_args = list(extra_args)  # e.g. ['--heartbeat-ms', '500']
        self.web_root = web_root
        self.pid_file = pid_file
        self.host = host
        self.port = port
        self.orchestrator = orchestrator
        self.log_path = log_path
        self.proc = None
        self.url = f'http://{host}:{port}/'

    def start(self, timeout=30):
        """Starts it and waits (bounded) until ready_path answers 200."""
        argv = [self.binary, '--host', self.host, '--port', str(self.port),
                '--orchestrator', self.orchestrator]
        if self.web_root:
            argv += ['--web-root', self.web_root]
        argv += self.extra_args
        with open(self.log_path, 'ab') as log_file:
            self.proc = subprocess.Popen(
                argv, stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        if self.pid_file:  # So that whoever runs this can clean up after it.
            with open(self.pid_file, 'w') as f:
                f.write(f'{self.proc.pid}\n')
        log(f'gateway started: pid {self.proc.pid}, {self.url}')

        def ready():
            if self.proc.poll() is not None:
                raise CheckFailed(f'the gateway exited with '
                                  f'{self.proc.returncode}; see '
                                  f'{self.log_path}')
            return http_get(self.url + self.ready_path, timeout=2)[0] == 200

        wait_for(f'{self.url}{self.ready_path}', ready, timeout,
                 interval=0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL by PID: the gateway is lost, as in a crash."""
        pid = self.proc.pid
        os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._forget_pid()
        log(f'gateway pid {pid} killed')

    def stop(self):
        """SIGTERM by PID, SIGKILL after 10 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._forget_pid()

    def _forget_pid(self):
        """Once reaped, its PID may be reused: nobody must kill it then."""
        if self.pid_file:
            try:
                os.remove(self.pid_file)
            except FileNotFoundError:
                pass


def wait_specialists(url, want, timeout):
    """Waits (bounded) until api/specialists lists `want` as available."""
    available = set()

    def ready():
        nonlocal available
        status, body = http_get(url + 'api/specialists', timeout=2)
        if status != 200:
            return False
        try:
            data = json.loads(body)
        except ValueError:
            return False
        items = data.get('specialists', []) if isinstance(data, dict) else data
        available = {(i.get('card') or i).get('name') for i in items
                     if isinstance(i, dict) and i.get('available')}
        return set(want) <= available

    try:
        wait_for('the specialists to be available', ready, timeout)
    except CheckFailed:
        raise CheckFailed(f'specialists not available within {timeout:.0f} s:'
                          f' have {sorted(available)}, need {sorted(want)}'
                          ) from None


# ---------------------------------------------------------------------------
# The page

def open_page(driver, url):
    """Loads the web client fresh, with the error hook in place."""
    driver.s('POST', '/url', {'url': url}, timeout=60)
    wait_for('#question and #send on the page',
             lambda: driver.execute(
                 "return !!document.querySelector('#question') && "
                 "!!document.querySelector('#send');"), 20)
    driver.execute(HOOK_SCRIPT + 'return true;')
    initial = driver.execute(STATE_SCRIPT)
    if initial['answer']:
        raise CheckFailed(f'#answer has text before anything was asked: '
                          f'{initial["answer"][:200]!r}')


def ask(driver, question):
    q = driver.find('#question')
    driver.s('POST', f'/element/{q}/clear', {})
    driver.s('POST', f'/element/{q}/value', {'text': question})
    typed = driver.execute("return document.querySelector('#question').value;")
    if typed != question:
        raise CheckFailed(f'#question holds {typed!r} after typing')
    driver.s('POST', f'/element/{driver.find("#send")}/click', {})
    log(f'asked: {question}')


def pick_specialist(driver, name):
    """Clicks `name`'s chip on the roster, so that only it runs."""
    def chip():
        return driver.execute(
            "return Array.from(document.querySelectorAll('#roster-chips "
            ".roster-chip')).find((c) => c.textContent.includes(arguments[0]))"
            " || null;", name)

    element = wait_for(f'the roster chip of {name}', chip, 20)
    driver.s('POST', f'/element/{element[ELEMENT_KEY]}/click', {})
    pressed = driver.execute(
        "return Array.from(document.querySelectorAll('#roster-chips "
        ".roster-chip[aria-pressed=\"true\"]')).map((c) => c.textContent);")
    if len(pressed) != 1 or name not in pressed[0]:
        raise CheckFailed(f'after clicking {name} the roster has pressed '
                          f'{pressed}')


def card_of(state, name):
    for card in state['cards']:
        if card['name'] == name:
            return card
    return None


def wait_state(driver, what, pred, timeout, last):
    """Polls the page state until pred(state); bounded; keeps the last."""
    def check():
        state = driver.execute(STATE_SCRIPT)
        last.clear()
        last.update(state)
        return state if pred(state) else None

    try:
        return wait_for(what, check, timeout, interval=0.1)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; page: {summarize(last)}') from None


def page_log(driver):
    rows = driver.execute(LOG_SCRIPT)
    for row in rows:
        text = row['seq'].lstrip('#')
        row['seq'] = int(text) if text.isdigit() else None
        try:
            row['data'] = json.loads(row['data']) if row['data'] else {}
        except ValueError:
            row['data'] = {}
    return rows


def check_seqs(rows, expected_n):
    """The page applied seq 1..expected_n, each once, in order."""
    seqs = [r['seq'] for r in rows if r['seq'] is not None]
    problems = []
    if seqs != list(range(1, len(seqs) + 1)):
        dups = sorted({s for s in seqs if seqs.count(s) > 1})
        missing = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
        problems.append(f'the page log is not seq 1..N once each in order '
                        f'(duplicates {dups[:20]}, missing {missing[:20]}, '
                        f'{len(seqs)} rows)')
    if len(seqs) != expected_n:
        problems.append(f'the page log holds {len(seqs)} updates with a '
                        f'seq, the orchestrator appended {expected_n}')
    return problems


def summarize(state):
    if not state:
        return '(no state read)'
    cards = ', '.join(f'{c["name"]}={c["progress"]}%/{c["outcome"] or "-"}'
                      f'/{c.get("results", 0)} results'
                      for c in state.get('cards', []))
    return (f'status={state.get("status")!r} '
            f'connection={state.get("connection")!r} '
            f'message={state.get("statusMessage")!r} '
            f'notice={state.get("notice")!r} '
            f'request={state.get("requestId")!r} cards=[{cards}] '
            f'errors={state.get("runErrors")!r} '
            f'page_errors={state.get("pageErrors")}')


# ---------------------------------------------------------------------------
# Scenarios
