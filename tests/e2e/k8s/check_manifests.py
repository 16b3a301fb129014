#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/k8s (ctest: k8s_manifests).

No cluster is needed, nor contacted:
  - every document of every file parses (PyYAML) and passes a schema-level
    check: known apiVersion/kind, only known fields (a typo in a probe or a
    port is an error), the types Kubernetes wants (env values and ConfigMap
    data are strings, ports are integers 1..65535);
  - the objects fit together: selectors match pod labels, Services select
    exactly one Deployment, envFrom names the ConfigMap, volume mounts name
    volumes, HPAs scale Deployments that exist, kustomization.yaml lists
    every file;
  - they are the system the compose file runs: the images, container ports
    and DNS names of docker-compose.yml when it exists, otherwise the fixed
    names and ports of the issue's contract; every specialist kind has a
    Deployment with gRPC readiness and liveness probes (the image's
    health_probe, which speaks mTLS) and a headless Service, and the three
    data-backed kinds an autoscaler; every service mounts its own TLS
    Secret (agentstream-tls-<name>) read-only and names its files in
    AGENTSTREAM_TLS_CERT/_KEY/_CA; the gateway authenticates with its token
    file from the Secret agentstream-auth and the orchestrator trusts only
    the gateway's certificate, as in docker-compose.yml (k8s_auth.py);
  - the orchestrators share runs as in docker-compose.yml (docs/SCALING.md):
    the Deployment has compose's number of replicas (at least two) behind a
    headless Service, the ConfigMap's AGENTSTREAM_RUN_STORE is compose's
    (redis://redis:6379), and that Redis is redis.yaml's StatefulSet of one
    running compose's redis-server arguments (append-only, its --dir on the
    claim's volume), probed with redis-cli ping, behind a Service `redis`
    on 6379;
  - `kubectl kustomize` renders the same objects (kubectl works offline for
    that; `kubectl create/apply --dry-run=client` need an API server's
    discovery and are not used);
  - with AGENTSTREAM_BIN_DIR set (and a data_analyst that has
    --generate-only), what the specialists' `dataset` init container runs is
    run for real with the ConfigMap's environment and makes the data set.

Exit status: 0 pass, 1 failure. python3-yaml (Debian) is required: without
it the test is skipped (77) outside CI and fails under CI
(tests/e2e/ci_policy.py); so does a missing kubectl or bin dir, which outside
CI only leave their checks out (said in the output).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from k8s_auth import check_auth
from k8s_schema import (
    errors,
    error,
    note,
    get,
    quantity,
    load_manifests,
    check_objects,
    yaml,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.dirname(HERE))  # tests/e2e: ci_policy
# pylint: disable-next=wrong-import-position
from ci_policy import skip_or_fail, under_ci

# The names, image and ports docker-compose.yml and these manifests share.
IMAGE = 'agentstream:latest'
SPECIALISTS = {  # DNS/Service name -> (binary, Specialist name, data set)
    'data-analyst': ('data_analyst', 'DataAnalyst', True),
    'risk-analyst': ('risk_analyst', 'RiskAnalyst', True),
    'compliance-expert': ('compliance_expert', 'ComplianceExpert', True),
    'synthetic': ('synthetic', 'Synthetic', False),
}
GATEWAY_PORT = 8080
ORCHESTRATOR_PORT = 50051
SPECIALIST_PORT = 50061
METRICS_PORT = 9090


def containers(dep, init=False):
  spec = get(dep, 'spec.template.spec', {})
  out = list(spec.get('containers') or [])
  if init:
    out += spec.get('initContainers') or []
  return out


def check_consistency(objs, compose):
  deployments = {n: d for (k, n), d in objs.items() if k == 'Deployment'}
  # Deployments and StatefulSets: the checks every pod template gets.
  workloads = {n: d for (k, n), d in objs.items()
               if k in ('Deployment', 'StatefulSet')}
  services = {n: s for (k, n), s in objs.items() if k == 'Service'}
  hpas = {n: h for (k, n), h in objs.items()
          if k == 'HorizontalPodAutoscaler'}
  configmaps = {n: c for (k, n), c in objs.items() if k == 'ConfigMap'}

  for name, dep in workloads.items():
    where = f'{dep.get("kind")}/{name}'
    sel = get(dep, 'spec.selector.matchLabels') or {}
    labels = get(dep, 'spec.template.metadata.labels') or {}
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
      error(f'{where}: selector {sel} does not match pod labels {labels}')
    vols = {v.get('name') for v in get(dep, 'spec.template.spec.volumes', [])
            or []}
    vols |= {get(t, 'metadata.name') for t in
             get(dep, 'spec.volumeClaimTemplates', []) or []}
    for c in containers(dep, init=True):
      cw = f'{where}/{c.get("name")}'
      if c.get('image') != IMAGE:
        error(f'{cw}: image {c.get("image")!r}, the contract says {IMAGE}')
      for ef in c.get('envFrom') or []:
        ref = get(ef, 'configMapRef.name')
        if ref and ref not in configmaps:
          error(f'{cw}: envFrom names ConfigMap {ref!r}, which is not defined')
      for vm in c.get('volumeMounts') or []:
        if vm.get('name') not in vols:
          error(f'{cw}: mounts volume {vm.get("name")!r}, not in volumes')
      res = c.get('resources') or {}
      for kind in ('cpu', 'memory'):
        req = get(res, f'requests.{kind}')
        lim = get(res, f'limits.{kind}')
        if req is None or lim is None:
          error(f'{cw}: resources need requests and limits of {kind}')
          continue
        try:
          if quantity(lim) < quantity(req):
            error(f'{cw}: {kind} limit {lim} below request {req}')
        except ValueError as e:
          error(f'{cw}: bad quantity {e}')
      if not get(c, 'securityContext.allowPrivilegeEscalation') is False:
        error(f'{cw}: allowPrivilegeEscalation must be false')
    if get(dep, 'spec.template.spec.securityContext.runAsNonRoot') is not True:
      error(f'{where}: pods must run as non-root')

  for name, svc in services.items():
    sel = get(svc, 'spec.selector') or {}
    matched = [d for d, dep in workloads.items()
               if all((get(dep, 'spec.template.metadata.labels') or {})
                      .get(k) == v for k, v in sel.items())]
    if len(matched) != 1:
      error(f'Service/{name}: selects {matched or "no workload"}, '
            'exactly one expected')
      continue
    dep = workloads[matched[0]]
    ports = {p.get('name'): p.get('containerPort')
             for c in containers(dep) for p in c.get('ports') or []}
    for p in get(svc, 'spec.ports') or []:
      target = p.get('targetPort', p.get('port'))
      if isinstance(target, str) and target not in ports:
        error(f'Service/{name}: targetPort {target!r} is not a port of '
              f'Deployment/{matched[0]} ({sorted(ports)})')
      if isinstance(target, int) and target not in ports.values():
        error(f'Service/{name}: targetPort {target} is not a container port')
      if isinstance(target, str) and ports.get(target) != p.get('port'):
        error(f'Service/{name}: port {p.get("port")} maps to container port '
              f'{ports.get(target)}; the contract wants them equal')

  for name, hpa in hpas.items():
    ref = get(hpa, 'spec.scaleTargetRef') or {}
    if ref.get('kind') != 'Deployment' or ref.get('name') not in deployments:
      error(f'HorizontalPodAutoscaler/{name}: scales {ref}, not a Deployment '
            'defined here')
    lo, hi = get(hpa, 'spec.minReplicas', 1), get(hpa, 'spec.maxReplicas', 0)
    if not 1 <= lo <= hi:
      error(f'HorizontalPodAutoscaler/{name}: replicas {lo}..{hi}')

  # --- The contract / the compose file --------------------------------------
  def port_env(dep):
    for c in containers(dep):
      for e in c.get('env') or []:
        if e.get('name') == 'AGENTSTREAM_PORT':
          return e.get('value')
    return None

  def container_ports(dep):
    return {p.get('containerPort') for c in containers(dep)
            for p in c.get('ports') or []}

  def probe(dep, which):
    return get(containers(dep)[0], which) if containers(dep) else None

  expected = {'gateway': (GATEWAY_PORT, 'gateway'),
              'orchestrator': (ORCHESTRATOR_PORT, 'orchestrator')}
  expected.update({svc: (SPECIALIST_PORT, binary)
                   for svc, (binary, _, _) in SPECIALISTS.items()})
  for name, (port, binary) in expected.items():
    dep = deployments.get(name)
    if dep is None:
      error(f'no Deployment {name!r}')
      continue
    if port_env(dep) != str(port):
      error(f'Deployment/{name}: AGENTSTREAM_PORT {port_env(dep)!r}, the '
            f'contract says {str(port)!r}')
    if port not in container_ports(dep):
      error(f'Deployment/{name}: no containerPort {port}')
    c0 = containers(dep)[0] if containers(dep) else {}
    kind = (c0.get('args') or c0.get('command') or [''])[0]
    if os.path.basename(kind) != binary:
      error(f'Deployment/{name}: runs {kind!r}, expected {binary}')
    svc = services.get(name)
    if svc is None:
      error(f'no Service {name!r} (the DNS name of the contract)')
    elif port not in {p.get('port') for p in get(svc, 'spec.ports') or []}:
      error(f'Service/{name}: does not serve port {port}')
    if name != 'gateway':
      if METRICS_PORT not in container_ports(dep):
        error(f'Deployment/{name}: no metrics containerPort {METRICS_PORT}')
      # The kubelet's grpc: probe speaks plaintext, which the services'
      # mTLS refuses: the image's health_probe asks, with their files.
      want = f'grpc://127.0.0.1:{port}'
      for which in ('readinessProbe', 'livenessProbe'):
        command = get(probe(dep, which) or {}, 'exec.command') or []
        if command[:1] != ['/usr/local/bin/health_probe'] or \
            want not in command:
          error(f'Deployment/{name}: {which} must run health_probe on '
                f'{want} (got {probe(dep, which)})')
    else:
      for which, path in (('readinessProbe', '/readyz'),
                          ('livenessProbe', '/healthz')):
        got = get(probe(dep, which) or {}, 'httpGet.path')
        if got != path:
          error(f'Deployment/gateway: {which} must GET {path} (got {got})')

  for svc_name, (binary, _, data) in SPECIALISTS.items():
    svc = services.get(svc_name)
    if svc is not None and get(svc, 'spec.clusterIP') != 'None':
      error(f'Service/{svc_name}: must be headless (clusterIP: None) so that '
            'gRPC round robin sees every pod')
    dep = deployments.get(svc_name)
    if dep is None:
      continue
    if data:
      if svc_name not in hpas:
        error(f'no HorizontalPodAutoscaler for {svc_name}')
      inits = [c for c in get(dep, 'spec.template.spec.initContainers') or []]
      if not any(c.get('name') == 'dataset' for c in inits):
        error(f'Deployment/{svc_name}: no `dataset` init container')
  check_tls(deployments, expected)
  svc = services.get('gateway')
  if svc is not None and get(svc, 'spec.clusterIP') == 'None':
    error('Service/gateway: should have a cluster IP')
  svc = services.get('orchestrator')
  if svc is not None and get(svc, 'spec.clusterIP') != 'None':
    error('Service/orchestrator: must be headless (clusterIP: None) so that '
          'the gateway\'s round robin sees every orchestrator pod')

  env = {}
  for cm in configmaps.values():
    if 'AGENTSTREAM_GENERATE_ONLY' in (cm.get('data') or {}):
      error('ConfigMap: AGENTSTREAM_GENERATE_ONLY would make every specialist '
            'exit after making the data set')
    env.update(cm.get('data') or {})
  if 'AGENTSTREAM_PORT' in env:
    error('ConfigMap: AGENTSTREAM_PORT differs per kind; set it per '
          'Deployment')
  if env.get('AGENTSTREAM_HOST') != '0.0.0.0':
    error('ConfigMap: AGENTSTREAM_HOST must be 0.0.0.0 in pods')
  spec_addrs = dict(item.split('=', 1) for item in
                    env.get('AGENTSTREAM_SPECIALISTS', '').split(',')
                    if '=' in item)
  for svc_name, (_, spec_name, _) in SPECIALISTS.items():
    want = f'dns:///{svc_name}:{SPECIALIST_PORT}'
    if spec_addrs.get(spec_name) != want:
      error(f'ConfigMap: the orchestrator must address {spec_name} as '
            f'{want} (got {spec_addrs.get(spec_name)})')
  if env.get('AGENTSTREAM_ORCHESTRATOR') not in (
      f'orchestrator:{ORCHESTRATOR_PORT}',
      f'dns:///orchestrator:{ORCHESTRATOR_PORT}'):
    error('ConfigMap: AGENTSTREAM_ORCHESTRATOR must name the orchestrator '
          f'Service (got {env.get("AGENTSTREAM_ORCHESTRATOR")})')
  age = int(env.get('AGENTSTREAM_MAX_CONNECTION_AGE_MS', '0') or 0)
  if not 0 < age <= 10000:
    error('ConfigMap: AGENTSTREAM_MAX_CONNECTION_AGE_MS must be set and at '
          'most 10000 (a new pod gets calls within 10 s)')

  check_run_store(objs, compose, env)
  if compose is not None:
    check_against_compose(compose, deployments, env, container_ports)
  check_auth(deployments, None if compose is None else lambda svc: compose_env(
      (compose.get('services') or {}).get(svc) or {}))


def compose_replicas(svc):
  """The replicas compose starts by default (deploy.replicas, or `scale`)."""
  return (svc.get('deploy') or {}).get('replicas', svc.get('scale', 1))


def check_run_store(objs, compose, env):
  """Orchestrator replicas sharing runs through redis.yaml's Redis, as
  docker-compose.yml has it (docs/SCALING.md)."""
  services = (compose or {}).get('services') or {}
  orch = objs.get(('Deployment', 'orchestrator')) or {}
  replicas = get(orch, 'spec.replicas', 1)
  if not isinstance(replicas, int) or replicas < 2:
    error(f'Deployment/orchestrator: {replicas} replicas, want at least 2 '
          '(one takes over the runs of another that stops)')
  if compose is not None:
    want = compose_replicas(services.get('orchestrator') or {})
    if replicas != want:
      error(f'Deployment/orchestrator: {replicas} replicas, compose starts '
            f'{want}')
  store = env.get('AGENTSTREAM_RUN_STORE')
  want_store = 'redis://redis:6379'
  if compose is not None:
    want_store = compose_env(services.get('orchestrator') or {}).get(
        'AGENTSTREAM_RUN_STORE')
  if store != want_store:
    error(f'ConfigMap: AGENTSTREAM_RUN_STORE {store!r}, compose\'s '
          f'orchestrator has {want_store!r}')
  for c in containers(orch):
    names = {e.get('name') for e in c.get('env') or []}
    if names & {'AGENTSTREAM_RUN_STORE', 'AGENTSTREAM_REPLICA_ID'}:
      error('Deployment/orchestrator: sets AGENTSTREAM_RUN_STORE or '
            'AGENTSTREAM_REPLICA_ID itself (the ConfigMap has the store; '
            'each pod is named by its HOSTNAME)')
  redis = objs.get(('StatefulSet', 'redis'))
  svc = objs.get(('Service', 'redis'))
  if redis is None or svc is None:
    return error('no StatefulSet and Service `redis` (redis.yaml): the run '
                 'store AGENTSTREAM_RUN_STORE names')
  if get(redis, 'spec.replicas', 1) != 1:
    error(f'StatefulSet/redis: {get(redis, "spec.replicas")} replicas, want '
          '1 (one primary)')
  if 6379 not in {p.get('port') for p in get(svc, 'spec.ports') or []}:
    error('Service/redis: does not serve port 6379')
  c0 = (containers(redis) or [{}])[0]
  command, args = c0.get('command') or [], [str(a) for a in
                                             c0.get('args') or []]
  if command[:1] != ['redis-server']:
    error(f'StatefulSet/redis: runs {command}, want redis-server')
  pairs = dict(zip(args, args[1:]))
  if pairs.get('--appendonly') != 'yes':
    error('StatefulSet/redis: no --appendonly yes (a restart would lose '
          'every live run)')
  claims = {get(t, 'metadata.name') for t in
            get(redis, 'spec.volumeClaimTemplates') or []}
  mounts = {m.get('mountPath'): m.get('name')
            for m in c0.get('volumeMounts') or []}
  if mounts.get(pairs.get('--dir')) not in claims:
    error(f'StatefulSet/redis: --dir {pairs.get("--dir")!r} is not on a '
          f'volume claim ({claims}, mounts {mounts})')
  for which in ('readinessProbe', 'livenessProbe'):
    cmd = ' '.join(get(c0, f'{which}.exec.command') or [])
    if 'redis-cli ping' not in cmd:
      error(f'StatefulSet/redis: {which} {cmd!r}, want redis-cli ping')
  if compose is not None:
    csvc = services.get('redis')
    if csvc is None:
      return error('docker-compose.yml has no service `redis`')
    centry = csvc.get('entrypoint') or []
    ccmd = [str(a) for a in csvc.get('command') or []]
    if centry != command or ccmd != args:
      error(f'StatefulSet/redis: runs {command + args}, compose\'s redis '
            f'{centry + ccmd}')
    image = interpolate(csvc.get('image'))
    if image and image != c0.get('image'):
      error(f'StatefulSet/redis: image {c0.get("image")}, compose {image}')


def check_tls(deployments, names):
  """mTLS (docs/SECURITY.md, "Service-to-service TLS"): every service's
  main container has --tls-cert/--tls-key/--tls-ca (environment) in a
  read-only mount of its own Secret, agentstream-tls-<name>."""
  for name in names:
    dep = deployments.get(name)
    if dep is None or not containers(dep):
      continue
    c0 = containers(dep)[0]
    secret_vols = {v.get('name'): get(v, 'secret.secretName')
                   for v in get(dep, 'spec.template.spec.volumes', []) or []
                   if v.get('secret')}
    mounts = {m.get('name'): m for m in c0.get('volumeMounts') or []}
    vol = next((v for v, s in secret_vols.items()
                if s == f'agentstream-tls-{name}'), None)
    if vol is None or vol not in mounts:
      error(f'Deployment/{name}: does not mount Secret agentstream-tls-{name}')
      continue
    if not mounts[vol].get('readOnly'):
      error(f'Deployment/{name}: mounts its TLS Secret writable')
    base = mounts[vol].get('mountPath', '').rstrip('/')
    env = {e.get('name'): e.get('value') for e in c0.get('env') or []}
    for key, file in (('AGENTSTREAM_TLS_CERT', 'tls.crt'),
                      ('AGENTSTREAM_TLS_KEY', 'tls.key'),
                      ('AGENTSTREAM_TLS_CA', 'ca.crt')):
      if env.get(key) != f'{base}/{file}':
        error(f'Deployment/{name}: {key} {env.get(key)!r}, want '
              f'{base}/{file} (its Secret)')


def interpolate(value):
  """${VAR:-default} / ${VAR-default} / ${VAR} as compose would with VAR
  unset."""
  if not isinstance(value, str):
    return value
  return re.sub(r'\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}',
                lambda m: m.group(1) or '', value)


def compose_env(svc):
  env = svc.get('environment') or {}
  if isinstance(env, list):
    env = dict(item.split('=', 1) if '=' in item else (item, '')
               for item in env)
  return {k: interpolate(str(v)) for k, v in env.items() if v is not None}


def check_against_compose(compose, deployments, env, container_ports):
  services = compose.get('services') or {}
  note(f'docker-compose.yml: services {sorted(services)}')
  names = ['gateway', 'orchestrator'] + list(SPECIALISTS)
  for name in names:
    svc = services.get(name)
    if svc is None:
      error(f'docker-compose.yml has no service {name!r}; the manifests '
            'use that name')
      continue
    dep = deployments.get(name)
    if dep is None:
      continue
    image = interpolate(svc.get('image'))
    if image and image != IMAGE:
      error(f'compose {name}: image {image}, the manifests use {IMAGE}')
    cenv = compose_env(svc)
    if 'AGENTSTREAM_PORT' in cenv:
      if int(cenv['AGENTSTREAM_PORT']) not in container_ports(dep):
        error(f'compose {name}: AGENTSTREAM_PORT {cenv["AGENTSTREAM_PORT"]} '
              f'is not a container port of Deployment/{name}')
    for item in svc.get('ports') or []:
      text = interpolate(str(item.get('target') if isinstance(item, dict)
                             else item))
      target = int(re.split(r'[:/]', text.split(':')[-1])[0])
      if target not in container_ports(dep):
        error(f'compose {name}: publishes container port {target}, not a '
              f'port of Deployment/{name}')
    for item in svc.get('expose') or []:
      if int(str(item).split('/')[0]) not in container_ports(dep):
        error(f'compose {name}: exposes {item}, not a port of '
              f'Deployment/{name}')
    for key in ('AGENTSTREAM_WEB_ROOT', 'AGENTSTREAM_DB',
                'AGENTSTREAM_ORCHESTRATOR'):
      if key in cenv and key in env and cenv[key] != env[key]:
        error(f'compose {name}: {key}={cenv[key]}, the ConfigMap says '
              f'{env[key]}')
    # compose's `command` is the argument list of the image's entry point:
    # a container's `args` in Kubernetes (its `command` would replace the
    # entry point).
    command = svc.get('command')
    if command is not None:
      command = command.split() if isinstance(command, str) else command
      c0 = containers(dep)[0] if containers(dep) else {}
      if c0.get('command'):
        error(f'Deployment/{name}: sets command (replaces the image entry '
              'point); compose passes arguments: use args')
      if c0.get('args') != command:
        error(f'Deployment/{name}: args {c0.get("args")}, compose runs '
              f'{command}')
  dataset = services.get('dataset')
  if dataset is not None:
    want = dataset.get('command')
    want = want.split() if isinstance(want, str) else want
    for svc_name, (_, _, data) in SPECIALISTS.items():
      dep = deployments.get(svc_name)
      if not data or dep is None:
        continue
      inits = [c for c in get(dep, 'spec.template.spec.initContainers') or []
               if c.get('name') == 'dataset']
      if inits and (inits[0].get('command') or inits[0].get('args') != want):
        error(f'Deployment/{svc_name}: the dataset init container runs '
              f'{inits[0].get("command") or inits[0].get("args")}, compose\'s '
              f'dataset service {want}')
      if inits:
        mount = {m.get('mountPath') for m in inits[0].get('volumeMounts') or []}
        cdb = compose_env(dataset).get('AGENTSTREAM_DB', '')
        if cdb and os.path.dirname(cdb) not in mount:
          error(f'Deployment/{svc_name}: the dataset init container does not '
                f'mount {os.path.dirname(cdb)}')
  # The orchestrator's addresses of the specialists, however compose spells
  # them (environment or command).
  orch_text = str(services.get('orchestrator', ''))
  for svc_name in SPECIALISTS:
    m = re.search(rf'dns:///{re.escape(svc_name)}:(\d+)', orch_text)
    if m and int(m.group(1)) != SPECIALIST_PORT:
      error(f'compose orchestrator: {svc_name} at port {m.group(1)}, the '
            f'manifests use {SPECIALIST_PORT}')


def check_kustomization(k8s_dir, files):
  path = os.path.join(k8s_dir, 'kustomization.yaml')
  if not os.path.exists(path):
    return error('no kustomization.yaml')
  with open(path) as f:
    kust = yaml.safe_load(f)
  listed = kust.get('resources') or []
  for f_ in files:
    if f_ not in listed:
      error(f'kustomization.yaml does not list {f_}')
  for f_ in listed:
    if f_ not in files:
      error(f'kustomization.yaml lists {f_}, which does not exist')
  return kust


def check_kubectl(k8s_dir, objs, kust):
  kubectl = shutil.which('kubectl')
  if not kubectl:
    # install_deps.sh test installs it: under CI its absence is a failure
    # (tests/e2e/ci_policy.py).
    (error if under_ci() else note)(
        'kubectl not found: the kustomize rendering is not checked '
        '(apt-get install kubernetes-client)')
    return
  env = dict(os.environ, KUBECONFIG=os.devnull)
  version = subprocess.run([kubectl, 'version', '--client'],
                           capture_output=True, text=True, env=env,
                           timeout=60, check=False).stdout.strip()
  note(f'kubectl: {version.splitlines()[0] if version else "?"}')
  try:
    out = subprocess.run([kubectl, 'kustomize', k8s_dir], capture_output=True,
                         text=True, env=env, timeout=120, check=False)
  except subprocess.TimeoutExpired:
    return error('kubectl kustomize did not finish within 120 s')
  if out.returncode != 0:
    return error(f'kubectl kustomize failed: {out.stderr.strip()}')
  rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
  got = {(d.get('kind'), get(d, 'metadata.name')) for d in rendered}
  if got != set(objs):
    error(f'kubectl kustomize renders {sorted(got)}, the files hold '
          f'{sorted(objs)}')
  ns = kust.get('namespace')
  for d in rendered:
    if d.get('kind') != 'Namespace' and get(d, 'metadata.namespace') != ns:
      error(f'kustomize: {d.get("kind")}/{get(d, "metadata.name")} is not in '
            f'namespace {ns}')
  note(f'kubectl kustomize renders all {len(rendered)} objects into '
       f'namespace {ns}')


def check_dataset_init(objs, bin_dir):
  """Runs what a specialist pod's `dataset` init container runs (the image's
  `dataset` kind: data_analyst --generate-only), with the init container's
  environment from the ConfigMap, against the built binary."""
  dep = objs.get(('Deployment', 'risk-analyst'))
  init = [c for c in get(dep or {}, 'spec.template.spec.initContainers') or []
          if c.get('name') == 'dataset']
  if not init:
    return
  binary = os.path.join(bin_dir, 'data_analyst')
  # The project builds it, with --generate-only: anything else is a failure,
  # not a step quietly left out.
  if not os.access(binary, os.X_OK):
    return error(f'{binary} is not built: the dataset step cannot run')
  helptext = subprocess.run([binary, '--help'], capture_output=True,
                            text=True, timeout=30, check=False).stdout
  if '--generate-only' not in helptext:
    return error(f'{binary} has no --generate-only: the dataset step, what '
                 'the pods\' `dataset` init container runs, cannot run')
  cm = objs.get(('ConfigMap', 'agentstream-config'), {}).get('data') or {}
  tmp = tempfile.mkdtemp(prefix='agentstream-k8s.')
  try:
    env = {k: v for k, v in cm.items()}
    env['PATH'] = '/usr/bin:/bin'
    # The pod's /data, here.
    db = os.path.join(tmp, 'data', os.path.basename(cm['AGENTSTREAM_DB']))
    env['AGENTSTREAM_DB'] = db
    for attempt in ('makes', 'keeps'):
      t0 = time.monotonic()
      try:
        out = subprocess.run([binary, '--generate-only'], env=env,
                             capture_output=True, text=True, timeout=120,
                             check=False)
      except subprocess.TimeoutExpired:
        return error('data_analyst --generate-only did not end within 120 s')
      if out.returncode != 0:
        return error('data_analyst --generate-only failed: '
                     f'{out.stderr[-2000:]}')
      with open(db, 'rb') as f:
        if f.read(16) != b'SQLite format 3\x00':
          return error('data_analyst --generate-only made no SQLite file')
      note(f'dataset step ({attempt} the data set): '
           f'{time.monotonic() - t0:.1f} s, {os.path.getsize(db)} bytes')
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--k8s-dir', default=os.path.join(ROOT, 'deploy', 'k8s'))
  parser.add_argument('--compose',
                      default=os.path.join(ROOT, 'docker-compose.yml'))
  parser.add_argument('--bin-dir', default=os.environ.get('AGENTSTREAM_BIN_DIR'))
  args = parser.parse_args()
  if yaml is None:
    return skip_or_fail('k8s_manifests', 'PyYAML is missing (apt-get install '
                        'python3-yaml; run /usr/bin/python3)')

  files, docs = load_manifests(args.k8s_dir)
  note(f'{len(docs)} documents in {len(files)} files')
  objs = check_objects(docs)
  compose = None
  if os.path.exists(args.compose):
    with open(args.compose) as f:
      compose = yaml.safe_load(f)
  else:
    note(f'{args.compose} does not exist: checking against the contract only')
  check_consistency(objs, compose)
  kust = check_kustomization(args.k8s_dir, files) or {}
  check_kubectl(args.k8s_dir, objs, kust)
  if args.bin_dir:
    check_dataset_init(objs, args.bin_dir)
  else:
    # ctest sets AGENTSTREAM_BIN_DIR; by hand the step may be left out, but
    # not under CI.
    (error if under_ci() else note)(
        'AGENTSTREAM_BIN_DIR is not set: the dataset step is not run')
  if errors:
    print(f'[k8s_manifests] FAIL: {len(errors)} problems')
    return 1
  print('[k8s_manifests] PASS')
  return 0


if __name__ == '__main__':
  sys.exit(main())
