#!/usr/bin/python3
"""Browser end-to-end test of the web client against a gateway that
authenticates /api/* (docs/SECURITY.md "Authentication"), stdlib only
(plus Debian's python3-jwt through tests/unit/gateway/auth/jwt_tool.py,
which makes the tokens with code independent of the gateway's).

The gateway runs with --auth=jwt and an HS256 secret this script writes;
jwt_tool.py signs a good token (sub alice) and a bad one (another secret).
In headless Chromium, one page, step by step:

  1. the page loads, its first API call (api/specialists) is answered 401
     and the token field (#auth, a password input) appears, without a
     "refused" message;
  2. the bad token, saved, is refused: the field comes back saying so, with
     the gateway's error_description, and the bad token is not kept;
  3. the good token, saved: the roster loads; the token is in
     sessionStorage (never localStorage);
  4. the ACC-1042 question runs to its answer, status complete, every
     specialist card (RiskAnalyst and ComplianceExpert at least) at 100 %
     with outcome ok;
  5. a reload keeps the token (no field; the roster loads);
  6. a slow Synthetic run is cancelled with the Cancel button: the DELETE is
     accepted and the run ends cancelled;
  7. "Forget token" clears it from sessionStorage and shows the field.

Throughout: no URL the page fetched holds a token, there are no script
errors, and at the end the gateway's log holds neither token (nor either
signature).

Run by tests/e2e/run_browser_e2e.sh auth_e2e.py (ctest auth_e2e), which
starts the orchestrator and the specialists; this script starts the gateway.
Exit status: 0 pass, 1 a check failed, 2 the browser could not be driven;
without chromium, chromedriver or python3-jwt 77 (skipped), or 1 under CI
(tests/e2e/ci_policy.py).
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from browser_e2e import SYNTHETIC, SYNTHETIC_QUESTION
from browser_support import (add_browser_args, browser_session,
                             install_error_hook, missing_browser_tools)
from ci_policy import skip_or_fail
import e2e_support
from e2e_support import (CheckFailed, DriverError, Gateway, ask, card_of, log,
                         open_page, pick_specialist, summarize, wait_for,
                         wait_state)

HERE = os.path.dirname(os.path.abspath(__file__))
JWT_TOOL = os.path.join(HERE, '..', 'unit', 'gateway', 'auth', 'jwt_tool.py')
QUESTION = 'What is the risk and AML exposure of ACC-1042?'
# The specialists the planner picks for QUESTION (risk and AML: no data
# analysis asked for); every card on the page must reach 100 % ok.
EXPECT = ('RiskAnalyst', 'ComplianceExpert')
TOKEN_KEY = 'agentstream.accessToken'  # gateway/web/access_token.js
BAD_SIGNATURE = "the token's signature does not verify"

# The token field as the page shows it, in one round trip.
AUTH_SCRIPT = r"""
const q = (s) => document.querySelector(s);
const input = q('#auth-token');
return {
  shown: !!q('#auth') && !q('#auth').hidden,
  inputType: input ? input.type : null,
  explain: q('#auth-explain') ? q('#auth-explain').textContent.replace(/\s+/g, ' ').trim() : '',
  error: q('#auth-error') && !q('#auth-error').hidden ? q('#auth-error').textContent.trim() : '',
  forgetShown: !!q('#auth-clear') && !q('#auth-clear').hidden,
  rosterShown: !!q('#roster') && !q('#roster').hidden,
  session: sessionStorage.getItem(arguments[0]),
  local: Object.keys(localStorage).map((k) => localStorage.getItem(k)),
  fetches: (window.__e2eFetches || []).map((f) => ({url: f.url, method: f.method, status: f.status})),
  pageErrors: window.__e2eErrors || [],
};
"""


def jwt_tool(*args):
    out = subprocess.run(['/usr/bin/python3', JWT_TOOL, *args],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise CheckFailed(f'jwt_tool.py {args[0]} failed: {out.stderr}')
    return out.stdout.strip()


def write_secret(path):
    # The file's bytes are the HMAC key (one per line: no newline at all).
    with open(path, 'w') as f:
        f.write(secrets.token_hex(32))
    os.chmod(path, 0o600)


def get(url, token=None, timeout=5):
    request = urllib.request.Request(url)
    if token:
        request.add_header('Authorization', f'Bearer {token}')
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except (urllib.error.URLError, OSError):
        return 0, {}, b''


def wait_specialists(url, token, want, timeout):
    """api/specialists (with the token) lists `want` as available."""
    def ready():
        status, _, body = get(url + 'api/specialists', token, timeout=2)
        if status != 200:
            return False
        data = json.loads(body)
        items = data.get('specialists', []) if isinstance(data, dict) else data
        have = {(i.get('card') or i).get('name') for i in items
                if isinstance(i, dict) and i.get('available')}
        return set(want) <= have

    wait_for(f'the specialists {sorted(want)} (with the token)', ready,
             timeout)


def auth_state(driver):
    return driver.execute(AUTH_SCRIPT, TOKEN_KEY)


def wait_auth(driver, what, pred, timeout=20):
    last = {}

    def check():
        state = auth_state(driver)
        last.clear()
        last.update(state)
        return state if pred(state) else None

    try:
        return wait_for(what, check, timeout, interval=0.1)
    except CheckFailed as e:
        raise CheckFailed(f'{e}; token field: {last}') from None


def save_token(driver, token):
    field = driver.find('#auth-token')
    driver.s('POST', f'/element/{field}/clear', {})
    driver.s('POST', f'/element/{field}/value', {'text': token})
    driver.s('POST', f'/element/{driver.find("#auth-save")}/click', {})


def no_token_in_urls(state, tokens):
    for f in state['fetches']:
        for t in tokens:
            if t in f['url'] or 'access_token' in f['url']:
                raise CheckFailed(f'a URL the page fetched holds a token: '
                                  f'{f["url"][:120]}')


def steps(driver, url, good, bad, args):
    tokens = (good, bad)
    # 1. The first API call is refused; the field appears.
    open_page(driver, url)
    s = wait_auth(driver, 'the token field after the first 401',
                  lambda s: s['shown'])
    if s['inputType'] != 'password':
        raise CheckFailed(f'#auth-token is type {s["inputType"]!r}')
    if s['error']:
        raise CheckFailed(f'without a token the field says {s["error"]!r}')
    if 'access token' not in s['explain']:
        raise CheckFailed(f'no explanation line: {s["explain"]!r}')
    refused = [f for f in s['fetches'] if 'api/specialists' in f['url']]
    if refused and refused[0]['status'] != 401:
        raise CheckFailed(f'api/specialists answered {refused[0]}')
    log('step 1: the first API call got 401 and the token field shows')

    # 2. A bad token is refused, with the gateway's reason.
    save_token(driver, bad)
    s = wait_auth(driver, 'the bad token refused', lambda s: s['error'])
    if not s['shown'] or 'refused' not in s['error'] or \
            BAD_SIGNATURE not in s['error']:
        raise CheckFailed(f'after the bad token the field says '
                          f'{s["error"]!r} (shown {s["shown"]})')
    if s['session']:
        raise CheckFailed('the refused token is still in sessionStorage')
    log(f'step 2: the bad token is refused: {s["error"]!r}')

    # 3. The good token opens the API.
    save_token(driver, good)
    s = wait_auth(driver, 'the roster with the good token',
                  lambda s: s['rosterShown'] and not s['shown'])
    if s['session'] != good:
        raise CheckFailed('the good token is not in sessionStorage')
    if any(good in v for v in s['local'] if v):
        raise CheckFailed('the token is in localStorage')
    if not s['forgetShown']:
        raise CheckFailed('#auth-clear is hidden with a saved token')
    log('step 3: the good token is saved in sessionStorage; the roster loads')

    # 4. The ACC-1042 question to its answer, every card at 100 %.
    answer(driver, args.timeout)
    s = auth_state(driver)
    if s['shown']:
        raise CheckFailed(f'the token field came back during the run: {s}')
    no_token_in_urls(s, tokens)
    log('step 4: the question was answered with the token')

    # 5. A reload keeps the token.
    open_page(driver, url)
    s = wait_auth(driver, 'the roster after a reload',
                  lambda s: s['rosterShown'])
    if s['shown'] or s['session'] != good:
        raise CheckFailed(f'after a reload: field shown {s["shown"]}, '
                          f'token kept {s["session"] == good}')
    log('step 5: a reload keeps the token')

    # 6. Cancel with the token.
    last = {}
    pick_specialist(driver, SYNTHETIC)
    ask(driver, SYNTHETIC_QUESTION)

    def streaming(state):
        if state['status'] in ('failed', 'cancelled', 'complete'):
            raise CheckFailed('the run ended before the test could cancel '
                              'it: ' + summarize(state))
        card = card_of(state, SYNTHETIC)
        return (state['requestId'] and state['connection'] == 'open' and
                card is not None and card['results'] >= 5)

    wait_state(driver, 'the Synthetic run to stream', streaming, 30, last)
    driver.s('POST', f'/element/{driver.find("#cancel")}/click', {})
    state = wait_state(driver, 'the cancelled ending',
                       lambda s: s['connection'] in ('closed', 'error'), 30,
                       last)
    if state['status'] != 'cancelled' or state['answerOutcome'] != \
            'cancelled':
        raise CheckFailed(f'after Cancel: {summarize(state)}')
    s = wait_auth(driver, 'the answer to the DELETE', lambda s: any(
        f['method'] == 'DELETE' and f['status'] is not None
        for f in s['fetches']))
    deletes = [f for f in s['fetches'] if f['method'] == 'DELETE']
    if deletes[0]['status'] not in (200, 202):
        raise CheckFailed(f'the DELETE was answered {deletes[0]["status"]}')
    if s['shown']:
        raise CheckFailed('the token field came back on cancel')
    no_token_in_urls(s, tokens)
    log(f'step 6: cancelled with the token (DELETE {deletes[0]["status"]})')

    # 7. Forget the token.
    driver.s('POST', f'/element/{driver.find("#auth-clear")}/click', {})
    s = wait_auth(driver, 'the field after Forget token',
                  lambda s: s['shown'] and not s['session'])
    if s['pageErrors']:
        raise CheckFailed(f'script errors on the page: {s["pageErrors"]}')
    log('step 7: Forget token clears sessionStorage and shows the field')


def answer(driver, timeout):
    """Asks the ACC-1042 question on the page as it is (browser_e2e.py's
    answer scenario reloads it first: the reload is step 5 here)."""
    ask(driver, QUESTION)
    last = {}

    def answered(state):
        if state['status'] == 'failed' and not state['answer']:
            raise CheckFailed('the run failed before an answer arrived: ' +
                              summarize(state))
        return bool(state['answer'])

    wait_state(driver, '#answer to get text', answered, timeout, last)
    state = wait_state(driver, 'the stream to end (done)',
                       lambda s: s['connection'] in ('closed', 'error'), 15,
                       last)
    problems = []
    if state['status'] != 'complete':
        problems.append(f'status {state["status"]!r}, expected "complete"')
    names = [c['name'] for c in state['cards']]
    for expected in EXPECT:
        if expected not in names:
            problems.append(f'no card for {expected} (cards: {names})')
    for card in state['cards']:
        if card['progress'] != '100' or card['outcome'] != 'ok':
            problems.append(f'{card["name"]} ended at {card["progress"]}% '
                            f'with outcome {card["outcome"]!r}')
    if state['pageErrors']:
        problems.append(f'script errors on the page: {state["pageErrors"]}')
    if problems:
        raise CheckFailed('; '.join(problems) + f'; page: {summarize(state)}')
    log(f'answer ({state["requestId"]}): {state["answer"][:200]}; ' +
        ', '.join(f'{c["name"]} {c["progress"]}%' for c in state['cards']))


def main():
    parser = argparse.ArgumentParser(
        description='The web client against a gateway with --auth=jwt, in '
                    'headless Chromium.')
    parser.add_argument('--gateway-bin', required=True)
    parser.add_argument('--gateway-port', type=int, required=True)
    parser.add_argument('--gateway-log', default='gateway.log')
    parser.add_argument('--gateway-pid-file')
    parser.add_argument('--orchestrator', default='127.0.0.1:50051')
    parser.add_argument('--orchestrator-metrics',
                        help='accepted for run_browser_e2e.sh; unused')
    parser.add_argument('--ready-timeout', type=float, default=60)
    parser.add_argument('--timeout', type=float, default=90,
                        help='seconds to wait for the answer')
    parser.add_argument('--screenshot', default='auth_e2e.png')
    add_browser_args(parser)
    args = parser.parse_args()
    e2e_support.LOG_TAG = 'auth_e2e'

    missing = missing_browser_tools(args)
    if missing:
        return skip_or_fail('auth_e2e', missing)
    check = subprocess.run(['/usr/bin/python3', JWT_TOOL, 'check'],
                           capture_output=True, timeout=60)
    if check.returncode != 0:
        return skip_or_fail('auth_e2e', 'python3-jwt or python3-cryptography '
                            'is not installed (apt-get install python3-jwt '
                            'python3-cryptography)')

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix='agentstream-auth-e2e-')
    gateway = None
    status = 0
    try:
        secret = os.path.join(work, 'hs256.secret')
        other = os.path.join(work, 'other.secret')
        write_secret(secret)
        write_secret(other)
        claims = json.dumps({'sub': 'alice', 'exp': int(time.time()) + 3600})
        good = jwt_tool('sign', 'HS256', secret, claims)
        bad = jwt_tool('sign', 'HS256', other, claims)

        gateway = Gateway(args.gateway_bin, '127.0.0.1', args.gateway_port,
                          args.orchestrator, args.gateway_log,
                          pid_file=args.gateway_pid_file,
                          # debug: the most the gateway logs, so the
                          # check that no token is in it means something.
                          extra_args=['--auth=jwt',
                                      f'--auth-jwt-secret-file={secret}',
                                      '--log-level=debug'],
                          ready_path='healthz')
        gateway.start(timeout=args.ready_timeout)
        url = gateway.url
        code, headers, _ = get(url + 'api/specialists')
        if code != 401 or not headers.get('WWW-Authenticate', '').startswith(
                'Bearer'):
            raise CheckFailed(f'api/specialists without a token answered '
                              f'{code} {headers}: is --auth on?')
        wait_specialists(url, good, set(EXPECT) | {SYNTHETIC},
                         args.ready_timeout)
        log(f'system ready at {url} (--auth=jwt)')

        with browser_session(args, work) as driver:
            install_error_hook(driver)
            try:
                steps(driver, url, good, bad, args)
            finally:
                try:
                    driver.screenshot(args.screenshot)
                    log(f'screenshot: {os.path.abspath(args.screenshot)}')
                except DriverError as e:
                    log(f'could not save the screenshot: {e}')

        gateway.stop()
        with open(args.gateway_log, 'rb') as f:
            text = f.read().decode(errors='replace')
        # The refused bad token left its audit line (so the log did see the
        # requests that carried the tokens).
        if '"error":"invalid_token"' not in text:
            raise CheckFailed(f'the gateway log {args.gateway_log} has no '
                              'audit line for the refused token')
        for name, token in (('good', good), ('bad', bad)):
            for part in (token, token.rsplit('.', 1)[1]):
                if part in text:
                    raise CheckFailed(f'the {name} token appears in the '
                                      f'gateway log')
        log(f'the gateway log ({len(text)} bytes) holds neither token')
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
