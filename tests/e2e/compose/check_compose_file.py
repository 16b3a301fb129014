#!/usr/bin/env python3
"""docker-compose.yml checked without a Docker engine (ctest: compose_file).

The compose test (compose_e2e.py) runs the file with Debian 12's
docker-compose 1.29 against a real engine. Compose v2 (`docker compose`) is
not packaged by Debian 12, so this test stands in for it on what can be
checked offline:

  - the raw file (anchors and merge keys resolved by YAML, nothing else)
    validates against the Compose Specification's JSON schema shipped with
    docker-compose 1.29 (compose/config/compose_spec.json). The
    specification only grows, and v2 implements it, so a file valid under
    this older schema uses nothing v2 lacks; unknown keys are errors there
    (additionalProperties: false), so a typo cannot pass;
  - `docker-compose config -q` accepts it with every profile (interpolation,
    merge of the `x-` fragments, depends_on conditions), and so does
    `docker compose config -q` when a v2 is installed;
  - the rules `--scale` and the issue depend on hold: specialists publish no
    port and have no container_name, every specialist kind is reached by the
    orchestrator at dns:///<service>:<port> with the port the service
    listens on, long-running services restart and start in health order,
    only the gateway (8080) and the edge (8443) publish ports, the image has
    a HEALTHCHECK;
  - gRPC is mTLS (docs/SECURITY.md, "Service-to-service TLS"): the one-shot
    `certs` service makes a certificate for every gRPC service into the
    `agentstream-tls` volume, and each of them (gateway, orchestrator, every
    specialist kind) waits for it, mounts the volume and names its own
    certificate (/tls/<service>/tls.crt), key and the CA;
  - orchestrators scale (docs/SCALING.md): two replicas by default
    (deploy.replicas, or `scale`), no published port and no
    container_name (so `--scale orchestrator=N` works), each with
    AGENTSTREAM_RUN_STORE=redis://redis:6379 and waiting for a healthy
    `redis`; the gateway reaches them all at dns:///orchestrator:<port>;
    `redis` keeps an append-only file on its own named volume, checks its
    health with redis-cli ping and publishes no port;
  - authentication is on (docs/SECURITY.md, "Deployments"): the gateway
    runs --auth=token with its token file in the `agentstream-auth` volume
    (read-only), made by the one-shot `auth` service it waits for; the
    orchestrator trusts the principal only from the gateway's certificate
    (AGENTSTREAM_TRUSTED_PEERS=gateway, the name make_certs.sh gives it).

Exit status: 0 pass, 1 failure, 77 skipped (no docker-compose / PyYAML /
jsonschema outside CI; under CI that is a failure: tests/e2e/ci_policy.py).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.dirname(HERE))  # tests/e2e: ci_policy
from ci_policy import skip_or_fail  # pylint: disable=wrong-import-position
SPEC_PATHS = (
    '/usr/lib/python3/dist-packages/compose/config/compose_spec.json',)
SPECIALISTS = {'data-analyst': 'DataAnalyst', 'risk-analyst': 'RiskAnalyst',
               'compliance-expert': 'ComplianceExpert',
               'synthetic': 'Synthetic'}
PUBLISHED = {'gateway': '8080', 'edge': '8443'}
ONE_SHOT = ('dataset', 'certs', 'auth')

errors = []


def log(msg):
  print(f'[compose_file] {msg}', flush=True)


def error(msg):
  errors.append(msg)
  log(f'ERROR: {msg}')


def check_schema(doc, spec_path, jsonschema):
  with open(spec_path, encoding='utf-8') as f:
    spec = json.load(f)
  validator = jsonschema.Draft7Validator(spec)
  found = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
  for e in found:
    where = '/'.join(str(p) for p in e.path) or '(top)'
    error(f'Compose Specification: {where}: {e.message}')
  if not found:
    log(f'ok: the file validates against {spec_path}')


def check_config(cmd, compose_file):
  """`config -q` with no profile, each profile, and all of them."""
  name = ' '.join(cmd)
  for profiles in ([], ['edge'], ['synthetic'], ['edge', 'synthetic']):
    args = list(cmd) + ['-f', compose_file]
    for p in profiles:
      args += ['--profile', p]
    args += ['config', '-q']
    env = dict(os.environ)
    # Nothing from the caller's environment may change what is checked.
    for k in list(env):
      if k.startswith('AGENTSTREAM_') or k.startswith('COMPOSE_'):
        del env[k]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60,
                       env=env, cwd=ROOT, check=False)
    what = f'{name} config (profiles: {",".join(profiles) or "none"})'
    if r.returncode != 0:
      error(f'{what}: exit {r.returncode}: {r.stderr.strip()}')
    elif 'WARN' in r.stderr or 'warning' in r.stderr.lower():
      error(f'{what}: warnings: {r.stderr.strip()}')
    else:
      log(f'ok: {what}')


def env_of(svc):
  env = svc.get('environment') or {}
  if isinstance(env, list):
    env = dict(item.split('=', 1) for item in env if '=' in item)
  return {k: str(v) for k, v in env.items()}


def default_of(value):
  """'${X:-5000}' -> '5000' (what compose uses when X is unset)."""
  return re.sub(r'\$\{[A-Z0-9_]+:?-([^}]*)\}', r'\1', value)


def check_rules(doc):
  services = doc.get('services') or {}
  if 'version' in doc:
    error('a top-level `version` is obsolete in v2 (a warning on every '
          'command) and pins v1 to an older schema: leave it out')
  for name in ('certs', 'auth', 'dataset', 'data-analyst', 'risk-analyst',
               'compliance-expert', 'synthetic', 'redis', 'orchestrator',
               'gateway', 'edge'):
    if name not in services:
      error(f'no service {name!r}')
  for name, svc in services.items():
    if 'container_name' in svc:
      error(f'{name}: container_name stops --scale')
    ports = svc.get('ports') or []
    if name in PUBLISHED:
      targets = [str(p).rsplit(':', 1)[-1] for p in ports]
      if targets != [PUBLISHED[name]]:
        error(f'{name}: publishes {ports}, expected container port '
              f'{PUBLISHED[name]} only')
    elif ports:
      error(f'{name}: publishes {ports}; only the gateway and the edge may '
            '(a published port stops --scale)')
    if name not in ONE_SHOT and svc.get('restart') not in ('unless-stopped',
                                                           'always'):
      error(f'{name}: restart {svc.get("restart")!r}')
  orch = services.get('orchestrator') or {}
  addrs = dict(item.split('=', 1) for item in env_of(orch).get(
      'AGENTSTREAM_SPECIALISTS', '').split(',') if '=' in item)
  for svc_name, kind in SPECIALISTS.items():
    svc = services.get(svc_name) or {}
    port = default_of(env_of(svc).get('AGENTSTREAM_PORT', ''))
    want = f'dns:///{svc_name}:{port}'
    if addrs.get(kind) != want:
      error(f'orchestrator reaches {kind} at {addrs.get(kind)!r}, the '
            f'service listens at {want!r}')
    age = default_of(env_of(svc).get('AGENTSTREAM_MAX_CONNECTION_AGE_MS',
                                     '0'))
    if not age.isdigit() or not 0 < int(age) <= 10000:
      error(f'{svc_name}: max connection age {age!r}: a replica added later '
            'must get calls within 10 s')
  for name, deps in (('orchestrator', ('data-analyst', 'risk-analyst',
                                       'compliance-expert')),
                     ('gateway', ('orchestrator',)), ('edge', ('gateway',))):
    got = (services.get(name) or {}).get('depends_on') or {}
    for dep in deps:
      cond = (got.get(dep) or {}).get('condition') if isinstance(
          got, dict) else None
      if cond != 'service_healthy':
        error(f'{name}: depends_on {dep} {cond!r}, not service_healthy')
  for name in ('data-analyst', 'risk-analyst', 'compliance-expert'):
    got = (services.get(name) or {}).get('depends_on') or {}
    if (got.get('dataset') or {}).get('condition') != \
        'service_completed_successfully':
      error(f'{name}: does not wait for the data set')
  check_tls(services)
  check_auth(services)
  check_run_store(doc)
  with open(os.path.join(ROOT, 'deploy', 'docker', 'Dockerfile'),
            encoding='utf-8') as f:
    if not re.search(r'^HEALTHCHECK ', f.read(), re.M):
      error('deploy/docker/Dockerfile has no HEALTHCHECK')
  if not errors:
    log('ok: scale, addressing, restart, health-order and port rules hold')


def check_tls(services):
  certs = services.get('certs') or {}
  made = [str(a) for a in (certs.get('command') or [])[1:]]
  if 'agentstream-tls:/tls' not in (certs.get('volumes') or []):
    error('certs: does not write the agentstream-tls volume at /tls')
  for name in ['gateway', 'orchestrator'] + list(SPECIALISTS):
    svc = services.get(name) or {}
    env = env_of(svc)
    want = {'AGENTSTREAM_TLS_CERT': f'/tls/{name}/tls.crt',
            'AGENTSTREAM_TLS_KEY': f'/tls/{name}/tls.key',
            'AGENTSTREAM_TLS_CA': '/tls/ca.crt'}
    for key, value in want.items():
      if env.get(key) != value:
        error(f'{name}: {key} {env.get(key)!r}, want {value!r}')
    if name not in made:
      error(f'{name}: the certs service makes no certificate for it '
            f'(it makes {made})')
    if 'agentstream-tls:/tls:ro' not in (svc.get('volumes') or []):
      error(f'{name}: does not mount agentstream-tls at /tls read-only')
    got = svc.get('depends_on') or {}
    if (got.get('certs') or {}).get('condition') != \
        'service_completed_successfully':
      error(f'{name}: does not wait for the certs service')


def replicas_of(svc):
  """The replicas compose starts by default: deploy.replicas, or the
  older `scale` (compose refuses both set), or 1."""
  got = (svc.get('deploy') or {}).get('replicas', svc.get('scale', 1))
  return int(got) if str(got).isdigit() else None


def check_run_store(doc):
  services = doc.get('services') or {}
  orch = services.get('orchestrator') or {}
  env = env_of(orch)
  want_store = 'redis://redis:6379'
  if env.get('AGENTSTREAM_RUN_STORE') != want_store:
    error(f'orchestrator: AGENTSTREAM_RUN_STORE '
          f'{env.get("AGENTSTREAM_RUN_STORE")!r}, want {want_store!r} (the '
          'replicas share runs through the redis service)')
  replicas = replicas_of(orch)
  if replicas is None or replicas < 2:
    error(f'orchestrator: {replicas!r} replicas by default, want at least 2')
  if 'AGENTSTREAM_REPLICA_ID' in env:
    error('orchestrator: a fixed AGENTSTREAM_REPLICA_ID would give every '
          'replica the same name (the default is HOSTNAME-PID)')
  cond = ((orch.get('depends_on') or {}).get('redis') or {}).get('condition')
  if cond != 'service_healthy':
    error(f'orchestrator: depends_on redis {cond!r}, not service_healthy')
  port = default_of(env.get('AGENTSTREAM_PORT', ''))
  gw_env = env_of(services.get('gateway') or {})
  want = f'dns:///orchestrator:{port}'
  if gw_env.get('AGENTSTREAM_ORCHESTRATOR') != want:
    error(f'gateway: AGENTSTREAM_ORCHESTRATOR '
          f'{gw_env.get("AGENTSTREAM_ORCHESTRATOR")!r}, want {want!r} (round '
          'robin over every orchestrator replica)')
  redis = services.get('redis') or {}
  args = [str(a) for a in (redis.get('command') or [])]
  entry = [str(a) for a in (redis.get('entrypoint') or [])]
  if entry[:1] != ['redis-server'] and args[:1] != ['redis-server']:
    error(f'redis: runs {entry + args}, want redis-server')
  pairs = dict(zip(args, args[1:]))
  if pairs.get('--appendonly') != 'yes':
    error('redis: no --appendonly yes (a restart would lose every live run)')
  if pairs.get('--port', '6379') != '6379':
    error(f'redis: --port {pairs.get("--port")}, the store says 6379')
  data_dir = pairs.get('--dir')
  mounts = [str(v) for v in redis.get('volumes') or []]
  named = [v for v in mounts if v.split(':')[0] in (doc.get('volumes') or {})
           and len(v.split(':')) >= 2 and v.split(':')[1] == data_dir]
  if not data_dir or not named or any(v.endswith(':ro') for v in named):
    error(f'redis: --dir {data_dir!r} is not on a writable named volume '
          f'({mounts})')
  test = (redis.get('healthcheck') or {}).get('test') or []
  if 'redis-cli ping' not in ' '.join(str(t) for t in test):
    error(f'redis: health check {test!r}, want redis-cli ping')
  with open(os.path.join(ROOT, 'deploy', 'docker', 'Dockerfile'),
            encoding='utf-8') as f:
    if not re.search(r'^\s+.*\bredis-server\b', f.read(), re.M):
      error('deploy/docker/Dockerfile does not install redis-server (the '
            'redis service runs the agentstream image)')


def check_auth(services):
  auth = services.get('auth') or {}
  if auth.get('command') != ['auth']:
    error(f'auth: command {auth.get("command")!r}, want [\'auth\'] (the '
          'image\'s make_auth.sh)')
  if 'agentstream-auth:/auth' not in (auth.get('volumes') or []):
    error('auth: does not write the agentstream-auth volume at /auth')
  gw = services.get('gateway') or {}
  env = env_of(gw)
  if env.get('AGENTSTREAM_AUTH') != 'token':
    error(f'gateway: AGENTSTREAM_AUTH {env.get("AGENTSTREAM_AUTH")!r}, want '
          "'token' (authentication on in compose)")
  if env.get('AGENTSTREAM_AUTH_TOKEN_FILE') != '/auth/tokens':
    error('gateway: AGENTSTREAM_AUTH_TOKEN_FILE '
          f'{env.get("AGENTSTREAM_AUTH_TOKEN_FILE")!r}, want /auth/tokens')
  for key in ('AGENTSTREAM_AUTH_PROTECT_READYZ',):
    if default_of(env.get(key, 'false')) != 'false':
      error(f'gateway: {key}: the health-ordered start and the compose test '
            'read /readyz without a token')
  if 'agentstream-auth:/auth:ro' not in (gw.get('volumes') or []):
    error('gateway: does not mount agentstream-auth at /auth read-only')
  got = gw.get('depends_on') or {}
  if (got.get('auth') or {}).get('condition') != \
      'service_completed_successfully':
    error('gateway: does not wait for the auth service')
  orch = env_of(services.get('orchestrator') or {})
  if orch.get('AGENTSTREAM_TRUSTED_PEERS') != 'gateway':
    error('orchestrator: AGENTSTREAM_TRUSTED_PEERS '
          f'{orch.get("AGENTSTREAM_TRUSTED_PEERS")!r}, want \'gateway\' (the '
          'gateway certificate\'s name; the default `*` believes anyone)')
  for name, svc in services.items():
    if name not in ('auth', 'gateway') and any(
        str(v).startswith('agentstream-auth:') for v in
        svc.get('volumes') or []):
      error(f'{name}: mounts the token volume; only auth and the gateway may')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--compose-file',
                      default=os.path.join(ROOT, 'docker-compose.yml'))
  args = parser.parse_args()
  try:
    import yaml  # pylint: disable=import-outside-toplevel
    import jsonschema  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    return skip_or_fail('compose_file', f'{e.name} is missing (apt-get '
                        'install python3-yaml docker-compose)')
  v1 = shutil.which('docker-compose')
  spec = next((p for p in SPEC_PATHS if os.path.exists(p)), None)
  if not v1 or not spec:
    return skip_or_fail('compose_file', 'docker-compose (v1.29, with its '
                        'Compose Specification schema) is not installed')
  with open(args.compose_file, encoding='utf-8') as f:
    doc = yaml.safe_load(f)
  check_schema(doc, spec, jsonschema)
  check_rules(doc)
  check_config([v1], args.compose_file)
  docker = shutil.which('docker')
  v2 = docker and subprocess.run(
      [docker, 'compose', 'version'], capture_output=True, timeout=30,
      check=False).returncode == 0
  if v2:
    check_config([docker, 'compose'], args.compose_file)
  else:
    log('docker compose (v2) is not installed: the schema check stands in')
  if errors:
    log(f'FAIL: {len(errors)} problem(s)')
    return 1
  log('PASS')
  return 0


if __name__ == '__main__':
  sys.exit(main())
