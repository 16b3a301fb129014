#!/usr/bin/env python3
"""The agent ecosystem's own clients against the real binaries
(docs/PROTOCOLS.md): one of ag_ui, ai_sdk or a2a per run.

It installs the clients from npm (package.json here, pinned; into the build
tree, once, under a lock so that parallel tests share it), starts the
specialists (DataAnalyst, RiskAnalyst, ComplianceExpert, Synthetic), the
orchestrator and the gateway on free loopback ports, runs
`node <client>_client_test.mjs` against the gateway, and stops everything by
PID. The Node script asserts and exits non-zero on a failure; its output is
the test's.

Without node or npm (or the registry): skips (77), or fails under CI.
"""

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/e2e
from ci_policy import skip_or_fail  # noqa: E402
from process_support import (Failure, Processes, log, read_port,  # noqa: E402
                             wait_for)

CLIENTS = ('ag_ui', 'ai_sdk', 'a2a')
SPECIALISTS = (('DataAnalyst', 'data_analyst'), ('RiskAnalyst', 'risk_analyst'),
               ('ComplianceExpert', 'compliance_expert'),
               ('Synthetic', 'synthetic'))
NPM_TIMEOUT_S = 600
CLIENT_TIMEOUT_S = 300


def npm_install(prefix):
  """Installs package.json's clients into `prefix` (once; later calls with
  the same package.json reuse it). Returns the node_modules path."""
  os.makedirs(prefix, exist_ok=True)
  with open(os.path.join(prefix, '.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(os.path.join(HERE, 'package.json')) as f:
      wanted = f.read()
    stamp = os.path.join(prefix, 'package.json')
    modules = os.path.join(prefix, 'node_modules')
    have = ''
    if os.path.exists(stamp):
      with open(stamp) as f:
        have = f.read()
    if have != wanted or not os.path.isdir(modules):
      shutil.rmtree(modules, ignore_errors=True)
      with open(stamp, 'w') as f:
        f.write(wanted)
      log('npm install (package.json: ' +
          ', '.join(f'{k}@{v}' for k, v in
                    json.loads(wanted)['dependencies'].items()) + ')')
      subprocess.run(['npm', 'install', '--no-audit', '--no-fund',
                      '--no-package-lock', '--loglevel=error'],
                     cwd=prefix, check=True, timeout=NPM_TIMEOUT_S,
                     stdin=subprocess.DEVNULL)
    return modules


def start_topology(bin_dir, tmp, procs, gateway_args):
  ports = os.path.join(tmp, 'ports')
  os.makedirs(ports)
  addr = {}
  db = os.path.join(tmp, 'agentstream.db')
  for name, binary in SPECIALISTS:
    argv = [os.path.join(bin_dir, binary), '--port', '0', '--port-file',
            os.path.join(ports, name)]
    if binary != 'synthetic':
      argv += ['--db', db]
    procs.start(name, argv)
  for name, _ in SPECIALISTS:
    port = wait_for(f'{name} listening',
                    lambda n=name: read_port(os.path.join(ports, n)), 60, procs)
    addr[name] = f'127.0.0.1:{port}'
  argv = [os.path.join(bin_dir, 'orchestrator'), '--port', '0',
          '--port-file', os.path.join(ports, 'orchestrator')]
  for name, a in addr.items():
    argv += ['--specialist', f'{name}={a}']
  procs.start('orchestrator', argv)
  orch = wait_for('orchestrator listening',
                  lambda: read_port(os.path.join(ports, 'orchestrator')), 30,
                  procs)
  procs.start('gateway', [
      os.path.join(bin_dir, 'gateway'), '--port', '0', '--port-file',
      os.path.join(ports, 'gateway'), '--orchestrator', f'127.0.0.1:{orch}',
      *gateway_args])
  gw = wait_for('gateway listening',
                lambda: read_port(os.path.join(ports, 'gateway')), 30, procs)
  return f'http://127.0.0.1:{gw}'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--client', choices=CLIENTS, required=True)
  parser.add_argument('--bin-dir', required=True)
  parser.add_argument('--npm-prefix', required=True,
                      help='where the clients are installed (build tree)')
  parser.add_argument('--gateway-arg', action='append', default=[],
                      help='an extra gateway flag (repeatable)')
  parser.add_argument('--auth', action='store_true',
                      help='the gateway runs --auth=token; the client gets '
                           'a token made by `gateway token add` in '
                           'AGENTSTREAM_TOKEN')
  args = parser.parse_args()
  tag = f'{args.client}_e2e'
  for tool in ('node', 'npm'):
    if shutil.which(tool) is None:
      return skip_or_fail(tag, f'{tool} is not installed')
  try:
    modules = npm_install(args.npm_prefix)
  except (subprocess.CalledProcessError, subprocess.TimeoutExpired,
          OSError) as e:
    return skip_or_fail(tag, f'npm install failed: {e}')

  tmp = tempfile.mkdtemp(prefix=f'agentstream-{args.client}-')
  procs = Processes(tmp)
  ok = False
  token = ''
  gateway_args = list(args.gateway_arg)
  try:
    if args.auth:
      tokens = os.path.join(tmp, 'tokens')
      made = subprocess.run(
          [os.path.join(args.bin_dir, 'gateway'), 'token', 'add', '--file',
           tokens, '--name', 'dialect-client'], capture_output=True,
          text=True, timeout=30, check=False)
      if made.returncode != 0 or not made.stdout.strip():
        raise Failure(f'gateway token add: {made.stderr}')
      token = made.stdout.strip().splitlines()[-1]
      gateway_args += ['--auth', 'token', '--auth-token-file', tokens]
    url = start_topology(args.bin_dir, tmp, procs, gateway_args)
    log(f'gateway at {url}')
    script = os.path.join(HERE, f'{args.client}_client_test.mjs')
    env = {**os.environ, 'AGENTSTREAM_URL': url, 'NODE_PATH': modules,
           'AGENTSTREAM_TOKEN': token}
    # ESM resolves bare imports from the script's folder upwards, not from
    # NODE_PATH: the script is run from a copy next to node_modules.
    runner = os.path.join(os.path.dirname(modules),
                          os.path.basename(script))
    shutil.copy(script, runner)
    for helper in ('dialect_support.mjs',):
      shutil.copy(os.path.join(HERE, helper),
                  os.path.join(os.path.dirname(modules), helper))
    proc = subprocess.run(['node', runner], env=env, timeout=CLIENT_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    procs.check_alive()
    if proc.returncode != 0:
      raise Failure(f'the {args.client} client test exited with '
                    f'{proc.returncode}')
    ok = True
    log('PASSED')
  except (Failure, subprocess.TimeoutExpired) as e:
    log(f'FAIL: {e}')
    procs.dump_logs()
  finally:
    procs.stop_all()
    if ok:
      shutil.rmtree(tmp, ignore_errors=True)
    else:
      log(f'logs kept in {tmp}')
  return 0 if ok else 1


if __name__ == '__main__':
  sys.exit(main())
