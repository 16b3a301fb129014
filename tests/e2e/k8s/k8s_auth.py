#!/usr/bin/env python3
"""check_manifests.py's authentication checks (docs/SECURITY.md,
"Deployments"): the gateway authenticates /api/* (--auth=token with its
token file, or --auth=jwt with its key file, from a read-only mount of the
Secret agentstream-auth that no other pod mounts), its probes need no token,
and the orchestrator believes the principal only from the gateway's
certificate (AGENTSTREAM_TRUSTED_PEERS=gateway); the same as
docker-compose.yml says."""

from k8s_schema import error, get, note

AUTH_SECRET = 'agentstream-auth'
# The gateway certificate's name (make_certs.sh and the README make it
# with CN and first DNS name `gateway`: what PeerIdentity() reads).
GATEWAY_PEER = 'gateway'
KEY_FILES = {'token': ('AGENTSTREAM_AUTH_TOKEN_FILE',),
             'jwt': ('AGENTSTREAM_AUTH_JWT_SECRET_FILE',
                     'AGENTSTREAM_AUTH_JWT_PUBLIC_KEY_FILE',
                     'AGENTSTREAM_AUTH_JWKS_FILE')}


def _main_env(dep):
  cs = get(dep, 'spec.template.spec.containers', []) or []
  return {e.get('name'): e.get('value') for e in
          (cs[0].get('env') or [])} if cs else {}


def _secret_mounts(dep, secret):
  """mountPaths of `secret` in the main container: {path: readOnly}."""
  vols = {v.get('name') for v in get(dep, 'spec.template.spec.volumes', [])
          or [] if get(v, 'secret.secretName') == secret}
  cs = get(dep, 'spec.template.spec.containers', []) or []
  return {m.get('mountPath', '').rstrip('/'): bool(m.get('readOnly'))
          for c in cs[:1] for m in c.get('volumeMounts') or []
          if m.get('name') in vols}


def check_auth(deployments, compose_env_of=None):
  """compose_env_of(service) -> its environment in docker-compose.yml, or
  None without a compose file."""
  gw = deployments.get('gateway')
  orch = deployments.get('orchestrator')
  if gw is None or orch is None:
    return
  env = _main_env(gw)
  mode = env.get('AGENTSTREAM_AUTH')
  if mode not in KEY_FILES:
    error(f'Deployment/gateway: AGENTSTREAM_AUTH {mode!r}: authentication '
          'must be on (token or jwt) in Kubernetes')
  else:
    mounts = _secret_mounts(gw, AUTH_SECRET)
    files = [env[k] for k in KEY_FILES[mode] if env.get(k)]
    if len(files) != 1:
      error(f'Deployment/gateway: --auth={mode} needs exactly one of '
            f'{KEY_FILES[mode]} (got {files})')
    for f in files:
      where = [p for p in mounts if f.startswith(p + '/')]
      if not where:
        error(f'Deployment/gateway: {f} is not in a mount of Secret '
              f'{AUTH_SECRET} (mounts {sorted(mounts)})')
      elif not mounts[where[0]]:
        error(f'Deployment/gateway: Secret {AUTH_SECRET} mounted writable')
  for key in ('AGENTSTREAM_AUTH_PROTECT_READYZ',):
    if str(env.get(key, 'false')).lower() not in ('false', '0'):
      error(f'Deployment/gateway: {key}: the readiness probe GETs /readyz '
            'without a token')
  for name, dep in deployments.items():
    if name != 'gateway' and _secret_mounts(dep, AUTH_SECRET):
      error(f'Deployment/{name}: mounts Secret {AUTH_SECRET}; only the '
            'gateway may')
  peers = _main_env(orch).get('AGENTSTREAM_TRUSTED_PEERS')
  if peers != GATEWAY_PEER:
    error(f'Deployment/orchestrator: AGENTSTREAM_TRUSTED_PEERS {peers!r}, '
          f'want {GATEWAY_PEER!r} (the default `*` believes any peer)')
  if compose_env_of is None:
    return
  for svc, key, value in (('gateway', 'AGENTSTREAM_AUTH', mode),
                          ('orchestrator', 'AGENTSTREAM_TRUSTED_PEERS',
                           peers)):
    got = compose_env_of(svc).get(key)
    if got != value:
      error(f'compose {svc}: {key} {got!r}, the manifests say {value!r}')
  note(f'auth: gateway --auth={mode} from Secret {AUTH_SECRET}, the '
       f'orchestrator trusts {peers!r} (compose agrees)')
