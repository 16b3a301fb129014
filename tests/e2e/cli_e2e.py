#!/usr/bin/env python3
"""The terminal client's end-to-end test (ctest: cli_e2e), under tmux.

Starts the real specialists (DataAnalyst, RiskAnalyst, ComplianceExpert on a
data set made at start, and Synthetic slowed to a run of several seconds),
the orchestrator and the gateway from AGENTSTREAM_BIN_DIR on free loopback
ports, then runs `agentstream` (gateway/cli, docs/CLIENT.md "Terminal
client") in a detached tmux session of its own (`tmux -S <tmp>/sock`, a wide
window; that server is killed at the end, no other) and reads its screen
with `capture-pane -p`:

  - screen: the ACC-1042 question with all four specialists: Synthetic's
    progress bar is seen at several percentages over time (the bars move),
    every specialist line ends at 100 %, once; the answer on the screen is
    the `complete` of the same run as the gateway replays it
    (GET /api/runs/{id}/stream); exit status 0;
  - json: `--json` with stdout piped (no tmux): every line parses as JSON,
    with a connected, a complete whose answer is the run's, and a done;
  - cancel: Ctrl-C (tmux send-keys C-c) mid-run asks "Cancel the run?";
    `n` goes on (the bar keeps moving), a second Ctrl-C and `y` cancel it:
    the gateway's replay of the run ends `done cancelled`, the screen says
    so and the client exits 130;
  - cancel_now: a second Ctrl-C while asking cancels and exits 130 at once;
  - sigint: with standard input not a terminal (--json, a pipe), SIGINT
    cancels without asking: exit 130, the lines end with done cancelled;
  - resume: through tests/e2e/cut_proxy.py, which cuts the stream mid-event:
    the client resumes (the gateway's `connected` says "resumed" after the
    last seq the client had, which it sends only for a Last-Event-ID), the
    final screen is complete with one line per specialist; and the same
    with --json: no seq twice, none missing;
  - auth: against a second gateway with --auth=token, no token is an exit 1
    naming the 401, AGENTSTREAM_TOKEN's token completes the run.

Every wait has a deadline; every process is stopped by its PID. Exit status:
0 pass, 1 failure, 77 skipped (no tmux, outside CI; under CI a failure:
tests/e2e/ci_policy.py).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, 'edge'))
import edge_support  # pylint: disable=wrong-import-position
from ci_policy import skip_or_fail  # pylint: disable=wrong-import-position
from cut_proxy import CutProxy  # pylint: disable=wrong-import-position
from edge_support import (Failure, Processes, check, http_ok, read_port,  # pylint: disable=wrong-import-position
                          wait_for)

TAG = 'cli_e2e'
QUESTION = ('Assess the risk and AML compliance of account ACC-1042 over the '
            'last 6 months')
SPECIALISTS = ['DataAnalyst', 'RiskAnalyst', 'ComplianceExpert', 'Synthetic']
# Synthetic: COUNT partial results at RATE a second (an 8 s run), with small
# payloads so that its part of the answer has no word wider than the window.
COUNT = 80
RATE = 10
SIZE = 8
WIDTH, HEIGHT = 200, 50
# A specialist's line: its label, the bar, the percentage (screen.h).
BAR_LINE = re.compile(r'^(?P<label>.+?)\s+\[[#.]{20}\]\s+(?P<pct>\d+)%')
RUN_ID = re.compile(r'^agentstream  (run_[0-9a-f]{32})')


def log(msg):
  print(f'[{TAG}] {msg}', flush=True)


# edge_support's helpers log under its own tag; they are this test's here.
edge_support.log = log


class Tmux:
  """A tmux server of this test's own (its socket in the test's directory)."""

  def __init__(self, tmux, work):
    self.tmux = tmux
    self.sock = os.path.join(work, 'tmux.sock')
    self.started = False

  def run(self, *args, check_rc=True):
    proc = subprocess.run([self.tmux, '-S', self.sock, *args],
                          capture_output=True, timeout=10, check=False)
    if check_rc and proc.returncode != 0:
      raise Failure(f'tmux {args[0]} failed: {proc.stderr.decode()[-500:]}')
    return proc.stdout.decode(errors='replace')

  def start(self, name, argv, code_file):
    """Runs argv in a new detached session; its exit status goes to
    code_file and the pane stays as it was left."""
    # The shell ignores the Ctrl-C that tmux sends to the pane's process
    # group (the client sets its own handler), else it would die of it.
    script = 'trap "" INT; "$@"; echo $? > "$CODE_FILE"; exec sleep 300'
    env = ['-e', f'CODE_FILE={code_file}']
    self.run('new-session', '-d', '-s', name, '-x', str(WIDTH), '-y',
             str(HEIGHT), *env, 'sh', '-c', script, 'sh', *argv)
    self.started = True

  def screen(self, name):
    return self.run('capture-pane', '-p', '-t', name)

  def keys(self, name, *keys):
    self.run('send-keys', '-t', name, *keys)

  def kill(self):
    if self.started:
      self.run('kill-server', check_rc=False)
      self.started = False


def bars(screen):
  """{label: percentage} of the specialist lines on a screen, and the
  labels seen more than once."""
  seen, twice = {}, []
  for line in screen.splitlines():
    m = BAR_LINE.match(line)
    if m:
      label = m.group('label').strip()
      if label in seen:
        twice.append(label)
      seen[label] = int(m.group('pct'))
  return seen, twice


def read_code(path):
  try:
    with open(path) as f:
      text = f.read().strip()
    return int(text) if text else None
  except (OSError, ValueError):
    return None


def replay(gateway, run_id, timeout=20):
  """The run's updates as the gateway replays them from the start."""
  url = f'{gateway}/api/runs/{run_id}/stream'
  updates = []
  with urllib.request.urlopen(url, timeout=timeout) as resp:
    data = []
    for raw in resp:
      line = raw.decode().rstrip('\r\n')
      if line.startswith('data:'):
        data.append(line[5:].lstrip(' '))
      elif not line and data:
        updates.append(json.loads('\n'.join(data)))
        data = []
        if updates[-1].get('type') == 'done':
          break
  return updates


def final_of(updates):
  complete = [u for u in updates if u.get('type') == 'complete']
  done = [u for u in updates if u.get('type') == 'done']
  return (complete[-1] if complete else None), (done[-1] if done else None)


def squash(text):
  return ' '.join(text.split())


def screen_answer(screen):
  """The answer's text on the final screen (the lines after "Answer (...):"
  up to "done: ...")."""
  lines = screen.splitlines()
  start = next((i for i, l in enumerate(lines) if l.startswith('Answer (')),
               None)
  if start is None:
    return None
  out = []
  for line in lines[start + 1:]:
    if line.startswith('done: '):
      break
    out.append(line)
  return squash(' '.join(out))


class Run:
  """One agentstream under tmux, watched until it exits."""

  def __init__(self, tmux, name, argv, work):
    self.tmux = tmux
    self.name = name
    self.code_file = os.path.join(work, f'{name}.code')
    self.percentages = {}  # label -> [distinct percentages, in order]
    self.last = ''
    tmux.start(name, argv, self.code_file)

  def poll(self):
    self.last = self.tmux.screen(self.name)
    seen, _ = bars(self.last)
    for label, pct in seen.items():
      got = self.percentages.setdefault(label, [])
      if not got or got[-1] != pct:
        got.append(pct)
    return self.last

  def wait_screen(self, what, predicate, timeout, procs):
    def test():
      self.poll()
      if read_code(self.code_file) is not None and not predicate(self.last):
        raise Failure(f'agentstream exited ({read_code(self.code_file)}) '
                      f'before {what}; screen:\n{self.last}')
      return predicate(self.last)
    return wait_for(what, test, timeout, procs)

  def wait_exit(self, timeout, procs):
    def test():
      self.poll()
      return read_code(self.code_file) is not None
    wait_for(f'{self.name}: agentstream to exit', test, timeout, procs)
    self.poll()
    return read_code(self.code_file)


def synthetic_pct(screen):
  for label, pct in bars(screen)[0].items():
    if 'Synthetic' in label:
      return pct
  return None


def check_final_screen(screen, gateway, want_labels):
  seen, twice = bars(screen)
  check(not twice, f'each specialist line once on the final screen '
        f'(twice: {twice})')
  check(len(seen) == want_labels,
        f'{want_labels} specialist lines on the final screen: {seen}')
  check(all(p == 100 for p in seen.values()),
        f'every specialist line at 100 %: {seen}')
  m = RUN_ID.search(screen)
  check(m is not None, 'the screen names the run')
  complete, done = final_of(replay(gateway, m.group(1)))
  check(complete is not None and done is not None and
        done.get('status') == 'complete',
        f'the gateway replays run {m.group(1)} to its complete and done')
  want = squash(complete['result']['answer'])
  got = screen_answer(screen)
  check(got == want, f'the answer on the screen is the run\'s complete '
        f'({len(want)} characters)' +
        ('' if got == want else f'\nscreen: {got!r}\nrun:    {want!r}'))
  check('done: complete' in screen, 'the screen ends with done: complete')
  return m.group(1)


def scenario_screen(args, tmux, gw, work, procs):
  run = Run(tmux, 'screen', [args.cli, '--gateway', gw, '--specialists',
                             ','.join(SPECIALISTS), QUESTION], work)
  code = run.wait_exit(60, procs)
  screen = run.last
  log('final screen:\n' + screen.rstrip())
  check(code == 0, f'agentstream exited 0 (got {code})')
  synthetic = next((v for k, v in run.percentages.items()
                    if 'Synthetic' in k), [])
  check(len(set(synthetic)) >= 3,
        f'Synthetic\'s bar moved: seen at {synthetic}')
  check(synthetic == sorted(synthetic), 'and only forward')
  check_final_screen(screen, gw, len(SPECIALISTS))


def run_json(args, gw, timeout=60):
  proc = subprocess.run([args.cli, '--json', '--gateway', gw,
                         '--specialists', ','.join(SPECIALISTS), QUESTION],
                        capture_output=True, timeout=timeout, check=False,
                        stdin=subprocess.DEVNULL)
  lines = proc.stdout.decode().splitlines()
  updates = []
  for i, line in enumerate(lines):
    try:
      updates.append(json.loads(line))
    except ValueError as e:
      raise Failure(f'--json line {i + 1} does not parse ({e}): '
                    f'{line[:200]!r}') from None
  return proc, updates


def scenario_json(args, tmux, gw, work, procs):
  del tmux, work, procs
  proc, updates = run_json(args, gw)
  check(proc.returncode == 0, f'agentstream --json exited 0 '
        f'(got {proc.returncode}; stderr {proc.stderr.decode()[-300:]!r})')
  check(b'\x1b' not in proc.stdout, '--json output has no escape codes')
  types = [u.get('type') for u in updates]
  check(len(updates) > 10 and types[0] == 'connected' and
        types[-1] == 'done' and 'complete' in types,
        f'all {len(updates)} lines parse: connected first, a complete, '
        f'done last')
  rid = updates[0]['request_id']
  complete, done = final_of(replay(gw, rid))
  mine, _ = final_of(updates)
  check(mine['result'] == complete['result'] and done['status'] == 'complete',
        'its complete is the run\'s, as the gateway replays it')


def scenario_cancel(args, tmux, gw, work, procs):
  run = Run(tmux, 'cancel', [args.cli, '--gateway', gw, '--specialists',
                             'Synthetic', QUESTION], work)

  def moving(low):
    return lambda s: (synthetic_pct(s) or 0) > low

  run.wait_screen('Synthetic under way', moving(5), 30, procs)
  tmux.keys('cancel', 'C-c')
  run.wait_screen('the cancel prompt', lambda s: 'Cancel the run? [y/N]' in s,
                  10, procs)
  asked_at = synthetic_pct(run.last)
  tmux.keys('cancel', 'n', 'Enter')
  # No: the run goes on and the screen with it.
  run.wait_screen('the bar to move on after "n"', moving(asked_at + 5), 30,
                  procs)
  check(read_code(run.code_file) is None, '"n" kept the run going')
  tmux.keys('cancel', 'C-c')
  run.wait_screen('the prompt again',
                  lambda s: s.count('Cancel the run? [y/N]') >= 2, 10, procs)
  tmux.keys('cancel', 'y', 'Enter')
  code = run.wait_exit(30, procs)
  log('final screen:\n' + run.last.rstrip())
  check(code == 130, f'agentstream exited 130 after the cancel (got {code})')
  check('done: cancelled' in run.last, 'the screen ends with done: cancelled')
  rid = RUN_ID.search(run.last).group(1)
  complete, done = final_of(replay(gw, rid))
  check(done is not None and done.get('status') == 'cancelled' and
        complete.get('outcome') == 'cancelled',
        f'the gateway says run {rid} was cancelled')
  pct = synthetic_pct(run.last)
  check(pct is not None and pct < 100, f'Synthetic stopped at {pct} %')


def scenario_cancel_now(args, tmux, gw, work, procs):
  """A second Ctrl-C while the question is asked cancels and exits at once."""
  run = Run(tmux, 'cancel_now', [args.cli, '--gateway', gw, '--specialists',
                                 'Synthetic', QUESTION], work)
  run.wait_screen('Synthetic under way', lambda s: (synthetic_pct(s) or 0) > 5,
                  30, procs)
  tmux.keys('cancel_now', 'C-c')
  run.wait_screen('the cancel prompt', lambda s: 'Cancel the run? [y/N]' in s,
                  10, procs)
  tmux.keys('cancel_now', 'C-c')
  code = run.wait_exit(15, procs)
  check(code == 130, f'the second Ctrl-C: exit 130 (got {code})')
  rid = RUN_ID.search(run.last).group(1)
  complete, done = final_of(replay(gw, rid))
  check(done is not None and done.get('status') == 'cancelled' and
        complete.get('outcome') == 'cancelled',
        f'and run {rid} was cancelled (DELETE before the exit)')


def scenario_sigint(args, tmux, gw, work, procs):
  """Standard input not a terminal: SIGINT cancels without asking."""
  del tmux, work
  proc = subprocess.Popen([args.cli, '--json', '--gateway', gw,
                           '--specialists', 'Synthetic', QUESTION],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
  lines = []
  # A thread reads the lines, so that no wait here blocks past its deadline.
  reader = threading.Thread(target=lambda: lines.extend(iter(
      proc.stdout.readline, b'')), daemon=True)
  reader.start()
  try:
    def under_way():
      if proc.poll() is not None:
        raise Failure('agentstream --json ended before Synthetic started')
      return any(u.get('type') == 'progress' and u.get('progress', 0) > 5
                 for u in map(json.loads, list(lines)))

    wait_for('Synthetic under way (--json)', under_way, 30, procs)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    reader.join(timeout=10)
    err = proc.stderr.read()
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait(timeout=10)
  updates = [json.loads(l) for l in lines]
  check(proc.returncode == 130, f'SIGINT: exit 130 without asking (got '
        f'{proc.returncode}; {err.decode()[-200:]!r})')
  check(b'Cancel the run?' not in err, 'nothing was asked')
  check(updates[-1].get('type') == 'done' and
        updates[-1].get('status') == 'cancelled',
        f'the --json lines end with done cancelled: {updates[-1]}')


def scenario_resume(args, tmux, gw, work, procs):
  proxy = CutProxy(int(gw.rsplit(':', 1)[1]))
  try:
    via = proxy.url.rstrip('/')
    run = Run(tmux, 'resume', [args.cli, '--gateway', via, '--specialists',
                               ','.join(SPECIALISTS), QUESTION], work)
    run.wait_screen('Synthetic under way',
                    lambda s: 10 < (synthetic_pct(s) or 0) < 60, 30, procs)
    check(proxy.cut() >= 1, 'the proxy cut the client\'s stream')
    code = run.wait_exit(60, procs)
    log('final screen:\n' + run.last.rstrip())
    check(code == 0, f'agentstream exited 0 after the cut (got {code})')
    check(re.search(r'^agentstream  run_\w+  resumed x[1-9]', run.last,
                    re.M) is not None,
          'the client resumed the run (the gateway said "resumed")')
    check_final_screen(run.last, gw, len(SPECIALISTS))

    # The same with --json: the resume starts right after the last seq the
    # client had, and no update comes twice or goes missing.
    proxy_cuts = len(proxy.cuts)
    start = time.monotonic()
    holder = {}

    def cutter():
      # Cut once the run is streaming (the gateway's log has the run).
      while time.monotonic() - start < 30 and 'done' not in holder:
        if proxy.open_streams() and time.monotonic() - start > 2.5:
          proxy.cut()
          return
        time.sleep(0.1)

    t = threading.Thread(target=cutter, daemon=True)
    t.start()
    proc, updates = run_json(args, via)
    holder['done'] = True
    t.join(timeout=35)
    check(len(proxy.cuts) > proxy_cuts, 'the proxy cut the --json stream')
    check(proc.returncode == 0, f'agentstream --json exited 0 after the cut '
          f'(got {proc.returncode}; {proc.stderr.decode()[-300:]!r})')
    seqs = [u['seq'] for u in updates if isinstance(u.get('seq'), int) and
            u['seq'] > 0]
    resumed = [u for u in updates if u.get('type') == 'connected' and
               u.get('status') == 'resumed']
    check(resumed, 'a connected "resumed" line')
    first = resumed[0]
    before = [u['seq'] for u in updates[:updates.index(first)]
              if isinstance(u.get('seq'), int) and u['seq'] > 0]
    check(before and first.get('after_seq') == before[-1],
          f'it resumed after seq {first.get("after_seq")}, the last one '
          f'received ({before[-1] if before else None}): Last-Event-ID')
    check(seqs == list(range(1, len(seqs) + 1)),
          f'seqs 1..{len(seqs)}, none twice, none missing')
  finally:
    proxy.close()


def scenario_auth(args, tmux, gw, work, procs):
  """A second gateway with --auth=token (docs/SECURITY.md "Opaque tokens"):
  the token from AGENTSTREAM_TOKEN goes as Authorization: Bearer."""
  del tmux
  tokens = os.path.join(work, 'tokens')
  gateway = os.path.join(args.bin_dir, 'gateway')
  made = subprocess.run([gateway, 'token', 'add', '--file', tokens, '--name',
                         'cli'], capture_output=True, timeout=30, check=False)
  check(made.returncode == 0 and made.stdout.strip(), 'gateway token add')
  token = made.stdout.decode().strip().splitlines()[-1]
  orch = read_port(os.path.join(work, 'ports', 'orchestrator'))
  port_file = os.path.join(work, 'ports', 'gateway_auth')
  procs.start('gateway_auth', [
      gateway, '--host', '127.0.0.1', '--port', '0', '--port-file', port_file,
      '--orchestrator', f'127.0.0.1:{orch}', '--auth', 'token',
      '--auth-token-file', tokens])
  port = wait_for('the --auth gateway listening', lambda: read_port(port_file),
                  30, procs)
  url = f'http://127.0.0.1:{port}'
  wait_for('the --auth gateway up', lambda: http_ok(f'{url}/healthz'), 30,
           procs)
  argv = [args.cli, '--json', '--gateway', url, '--specialists',
          'DataAnalyst', QUESTION]
  env = {k: v for k, v in os.environ.items() if k != 'AGENTSTREAM_TOKEN'}
  refused = subprocess.run(argv, capture_output=True, timeout=60, check=False,
                           stdin=subprocess.DEVNULL, env=env)
  check(refused.returncode == 1 and b'HTTP 401' in refused.stderr,
        f'without a token: exit 1, HTTP 401 (got {refused.returncode}, '
        f'{refused.stderr.decode()[-200:]!r})')
  env['AGENTSTREAM_TOKEN'] = token
  ok = subprocess.run(argv, capture_output=True, timeout=60, check=False,
                      stdin=subprocess.DEVNULL, env=env)
  types = [json.loads(l).get('type') for l in ok.stdout.decode().splitlines()]
  check(ok.returncode == 0 and 'complete' in types and types[-1] == 'done',
        f'with AGENTSTREAM_TOKEN: the run completes (exit {ok.returncode})')
  check(token.encode() not in ok.stdout + ok.stderr,
        'the token appears nowhere in the output')


SCENARIOS = {'screen': scenario_screen, 'json': scenario_json,
             'cancel': scenario_cancel, 'cancel_now': scenario_cancel_now,
             'sigint': scenario_sigint, 'resume': scenario_resume,
             'auth': scenario_auth}


def start_system(args, tmp, procs):
  b = args.bin_dir
  ports = os.path.join(tmp, 'ports')
  os.makedirs(ports)
  db = os.path.join(tmp, 'transactions.db')
  subprocess.run([os.path.join(b, 'data_analyst'), '--generate-only', '--db',
                  db], check=True, capture_output=True, timeout=120)
  addresses = []
  for binary, name, extra in (
      ('data_analyst', 'DataAnalyst', ['--db', db]),
      ('risk_analyst', 'RiskAnalyst', ['--db', db]),
      ('compliance_expert', 'ComplianceExpert', ['--db', db]),
      ('synthetic', 'Synthetic', ['--count', str(COUNT), '--rate', str(RATE),
                                  '--size', str(SIZE)])):
    port_file = os.path.join(ports, binary)
    procs.start(binary, [os.path.join(b, binary), '--host', '127.0.0.1',
                         '--port', '0', '--port-file', port_file, *extra])
    port = wait_for(f'{name} listening', lambda f=port_file: read_port(f), 30,
                    procs)
    addresses.append(f'{name}=127.0.0.1:{port}')
  orch_file = os.path.join(ports, 'orchestrator')
  procs.start('orchestrator', [
      os.path.join(b, 'orchestrator'), '--host', '127.0.0.1', '--port', '0',
      '--port-file', orch_file] +
      [a for addr in addresses for a in ('--specialist', addr)])
  orch = wait_for('orchestrator listening', lambda: read_port(orch_file), 30,
                  procs)
  gw_file = os.path.join(ports, 'gateway')
  procs.start('gateway', [
      os.path.join(b, 'gateway'), '--host', '127.0.0.1', '--port', '0',
      '--port-file', gw_file, '--orchestrator', f'127.0.0.1:{orch}'])
  gw = wait_for('gateway listening', lambda: read_port(gw_file), 30, procs)
  url = f'http://127.0.0.1:{gw}'

  def available():
    body = http_ok(f'{url}/api/specialists')
    if not body:
      return False
    items = json.loads(body).get('specialists', [])
    return {s['name'] for s in items if s.get('available')} >= set(
        SPECIALISTS)

  wait_for('the specialists available', available, 30, procs)
  return url


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--bin-dir',
                      default=os.environ.get('AGENTSTREAM_BIN_DIR'))
  parser.add_argument('--scenarios', default=','.join(SCENARIOS))
  args = parser.parse_args()
  tmux_bin = shutil.which('tmux')
  if not tmux_bin:
    return skip_or_fail(TAG, 'tmux is not installed (apt-get install tmux)')
  needed = ('agentstream', 'gateway', 'orchestrator', 'data_analyst',
            'risk_analyst', 'compliance_expert', 'synthetic')
  if not args.bin_dir or not all(
      os.access(os.path.join(args.bin_dir, b), os.X_OK) for b in needed):
    log(f'FAIL: AGENTSTREAM_BIN_DIR must hold the built {", ".join(needed)}')
    return 1
  args.cli = os.path.join(args.bin_dir, 'agentstream')
  wanted = [s for s in args.scenarios.split(',') if s]
  unknown = set(wanted) - set(SCENARIOS)
  if unknown:
    log(f'FAIL: unknown scenarios {sorted(unknown)} (know {list(SCENARIOS)})')
    return 1

  tmp = tempfile.mkdtemp(prefix='agentstream-cli-e2e.')
  log_dir = os.path.join(tmp, 'logs')
  os.makedirs(log_dir)
  procs = Processes(log_dir)
  tmux = Tmux(tmux_bin, tmp)
  status = 1
  try:
    gw = start_system(args, tmp, procs)
    for name in wanted:
      log(f'--- {name}')
      SCENARIOS[name](args, tmux, gw, tmp, procs)
    status = 0
    log('PASS')
  except Failure as e:
    log(f'FAIL: {e}')
  except Exception as e:  # pylint: disable=broad-except
    log(f'FAIL: {type(e).__name__}: {e}')
  finally:
    tmux.kill()
    if status != 0:
      procs.dump_logs()
    procs.stop_all()
    shutil.rmtree(tmp, ignore_errors=True)
  return status


if __name__ == '__main__':
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
  sys.exit(main())
