#!/usr/bin/env python3
"""The schema-level half of check_manifests.py: the fields each Kubernetes
object these manifests use may have (a typo is an error), the types
Kubernetes wants, a YAML loader that refuses duplicate keys, and the error
list both halves report into."""

import os
import re

try:
  import yaml
except ImportError:
  yaml = None

errors = []


def error(msg):
  errors.append(msg)
  print(f'[k8s_manifests] ERROR: {msg}', flush=True)


def note(msg):
  print(f'[k8s_manifests] {msg}', flush=True)


# ---------------------------------------------------------------------------
# Schema: for each object, the fields allowed at each level. A dict maps a
# field to its schema; a list [schema] is a list of that; a type is a leaf.
# Only the fields these manifests (and reasonable edits of them) use.

STR, INT, BOOL = str, int, bool
QUANTITY = (str, int)  # "100m", "1", 1
INT_OR_STR = (int, str)

METADATA = {'name': STR, 'namespace': STR, 'labels': {'*': STR},
            'annotations': {'*': STR}}
LABELS = {'*': STR}
PROBE = {
    'grpc': {'port': INT, 'service': STR},
    'httpGet': {'path': STR, 'port': INT_OR_STR, 'scheme': STR,
                'httpHeaders': [{'name': STR, 'value': STR}]},
    'tcpSocket': {'port': INT_OR_STR},
    'exec': {'command': [STR]},
    'initialDelaySeconds': INT, 'periodSeconds': INT, 'timeoutSeconds': INT,
    'failureThreshold': INT, 'successThreshold': INT,
    'terminationGracePeriodSeconds': INT,
}
RESOURCES = {'requests': {'cpu': QUANTITY, 'memory': QUANTITY,
                          'ephemeral-storage': QUANTITY},
             'limits': {'cpu': QUANTITY, 'memory': QUANTITY,
                        'ephemeral-storage': QUANTITY}}
CONTAINER = {
    'name': STR, 'image': STR, 'imagePullPolicy': STR, 'command': [STR],
    'args': [STR], 'workingDir': STR,
    'env': [{'name': STR, 'value': STR,
             'valueFrom': {'configMapKeyRef': {'name': STR, 'key': STR},
                           'secretKeyRef': {'name': STR, 'key': STR},
                           'fieldRef': {'fieldPath': STR}}}],
    'envFrom': [{'configMapRef': {'name': STR}, 'secretRef': {'name': STR},
                 'prefix': STR}],
    'ports': [{'name': STR, 'containerPort': INT, 'protocol': STR}],
    'readinessProbe': PROBE, 'livenessProbe': PROBE, 'startupProbe': PROBE,
    'resources': RESOURCES,
    'volumeMounts': [{'name': STR, 'mountPath': STR, 'readOnly': BOOL,
                      'subPath': STR}],
    'securityContext': {'allowPrivilegeEscalation': BOOL,
                        'readOnlyRootFilesystem': BOOL, 'runAsNonRoot': BOOL,
                        'runAsUser': INT, 'runAsGroup': INT,
                        'capabilities': {'drop': [STR], 'add': [STR]}},
}
POD_SPEC = {
    'containers': [CONTAINER], 'initContainers': [CONTAINER],
    'volumes': [{'name': STR, 'emptyDir': {'sizeLimit': QUANTITY,
                                           'medium': STR},
                 'configMap': {'name': STR},
                 'secret': {'secretName': STR, 'defaultMode': INT},
                 'persistentVolumeClaim': {'claimName': STR,
                                           'readOnly': BOOL}}],
    'enableServiceLinks': BOOL, 'terminationGracePeriodSeconds': INT,
    'serviceAccountName': STR, 'nodeSelector': LABELS,
    'securityContext': {'runAsNonRoot': BOOL, 'runAsUser': INT,
                        'runAsGroup': INT, 'fsGroup': INT},
}
SCHEMAS = {
    ('v1', 'Namespace'): {'apiVersion': STR, 'kind': STR,
                          'metadata': METADATA},
    ('v1', 'ConfigMap'): {'apiVersion': STR, 'kind': STR,
                          'metadata': METADATA, 'data': {'*': STR}},
    ('v1', 'Service'): {
        'apiVersion': STR, 'kind': STR, 'metadata': METADATA,
        'spec': {'type': STR, 'clusterIP': STR, 'selector': LABELS,
                 'publishNotReadyAddresses': BOOL,
                 'ports': [{'name': STR, 'port': INT,
                            'targetPort': INT_OR_STR, 'protocol': STR,
                            'appProtocol': STR}]}},
    ('apps/v1', 'Deployment'): {
        'apiVersion': STR, 'kind': STR, 'metadata': METADATA,
        'spec': {'replicas': INT, 'selector': {'matchLabels': LABELS},
                 'strategy': {'type': STR,
                              'rollingUpdate': {'maxSurge': INT_OR_STR,
                                                'maxUnavailable': INT_OR_STR}},
                 'template': {'metadata': METADATA, 'spec': POD_SPEC}}},
    ('apps/v1', 'StatefulSet'): {
        'apiVersion': STR, 'kind': STR, 'metadata': METADATA,
        'spec': {'replicas': INT, 'serviceName': STR,
                 'selector': {'matchLabels': LABELS},
                 'podManagementPolicy': STR,
                 'updateStrategy': {'type': STR,
                                    'rollingUpdate': {'partition': INT}},
                 'template': {'metadata': METADATA, 'spec': POD_SPEC},
                 'volumeClaimTemplates': [{
                     'metadata': METADATA,
                     'spec': {'accessModes': [STR], 'storageClassName': STR,
                              'resources': {
                                  'requests': {'storage': QUANTITY}}}}]}},
    ('autoscaling/v2', 'HorizontalPodAutoscaler'): {
        'apiVersion': STR, 'kind': STR, 'metadata': METADATA,
        'spec': {
            'scaleTargetRef': {'apiVersion': STR, 'kind': STR, 'name': STR},
            'minReplicas': INT, 'maxReplicas': INT,
            'metrics': [{'type': STR,
                         'resource': {'name': STR,
                                      'target': {'type': STR,
                                                 'averageUtilization': INT,
                                                 'averageValue': QUANTITY}}}],
            'behavior': {
                'scaleDown': {'stabilizationWindowSeconds': INT,
                              'selectPolicy': STR,
                              'policies': [{'type': STR, 'value': INT,
                                            'periodSeconds': INT}]},
                'scaleUp': {'stabilizationWindowSeconds': INT,
                            'selectPolicy': STR,
                            'policies': [{'type': STR, 'value': INT,
                                          'periodSeconds': INT}]}}}},
}
REQUIRED = {
    'Deployment': ['spec.selector.matchLabels', 'spec.template.metadata.labels',
                   'spec.template.spec.containers'],
    'StatefulSet': ['spec.selector.matchLabels',
                    'spec.template.metadata.labels',
                    'spec.template.spec.containers', 'spec.serviceName'],
    'Service': ['spec.ports', 'spec.selector'],
    'HorizontalPodAutoscaler': ['spec.scaleTargetRef', 'spec.maxReplicas'],
    'ConfigMap': ['data'],
}
DNS1123_LABEL = re.compile(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?')


def check_schema(node, schema, where):
  if isinstance(schema, dict):
    if not isinstance(node, dict):
      return error(f'{where}: a mapping expected, got {type(node).__name__}')
    for key, value in node.items():
      sub = schema.get(key, schema.get('*'))
      if sub is None:
        error(f'{where}: unknown field {key!r}')
        continue
      check_schema(value, sub, f'{where}.{key}')
  elif isinstance(schema, list):
    if not isinstance(node, list):
      return error(f'{where}: a list expected, got {type(node).__name__}')
    for i, item in enumerate(node):
      check_schema(item, schema[0], f'{where}[{i}]')
  else:
    types = schema if isinstance(schema, tuple) else (schema,)
    # bool is an int in Python; Kubernetes does not think so.
    if isinstance(node, bool) and bool not in types:
      return error(f'{where}: {node!r} is a boolean')
    if not isinstance(node, types):
      error(f'{where}: {node!r} is a {type(node).__name__}, '
            f'{"/".join(t.__name__ for t in types)} expected')


def get(obj, path, default=None):
  for part in path.split('.'):
    if not isinstance(obj, dict) or part not in obj:
      return default
    obj = obj[part]
  return obj


def quantity(q):
  """CPU or memory quantity as a float (cores or bytes), for comparisons."""
  q = str(q)
  units = {'m': 1e-3, 'Ki': 2**10, 'Mi': 2**20, 'Gi': 2**30, 'k': 1e3,
           'M': 1e6, 'G': 1e9}
  m = re.fullmatch(r'([0-9.]+)([A-Za-z]*)', q)
  if not m or (m.group(2) and m.group(2) not in units):
    raise ValueError(q)
  return float(m.group(1)) * units.get(m.group(2), 1)


def _unique_keys_loader():
  # PyYAML keeps the last of two equal keys; Kubernetes' parser refuses the
  # document. Refuse it here too.
  class Loader(yaml.SafeLoader):
    pass

  def construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
      key = loader.construct_object(key_node, deep=deep)
      if key in seen:
        raise yaml.constructor.ConstructorError(
            None, None, f'duplicate key {key!r}', key_node.start_mark)
      seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)

  Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                         construct_mapping)
  return Loader


def load_manifests(k8s_dir):
  docs = []  # (file, doc)
  files = sorted(f for f in os.listdir(k8s_dir)
                 if f.endswith(('.yaml', '.yml')) and
                 f not in ('kustomization.yaml', 'kustomization.yml'))
  for name in files:
    with open(os.path.join(k8s_dir, name)) as f:
      try:
        for doc in yaml.load_all(f, Loader=_unique_keys_loader()):
          if doc is not None:
            docs.append((name, doc))
      except yaml.YAMLError as e:
        error(f'{name}: does not parse: {e}')
  return files, docs


def check_objects(docs):
  by_kind = {}
  for fname, doc in docs:
    where = f'{fname}:{doc.get("kind")}/{get(doc, "metadata.name")}'
    key = (doc.get('apiVersion'), doc.get('kind'))
    schema = SCHEMAS.get(key)
    if schema is None:
      error(f'{where}: unexpected apiVersion/kind {key}')
      continue
    check_schema(doc, schema, where)
    name = get(doc, 'metadata.name')
    if not isinstance(name, str) or not DNS1123_LABEL.fullmatch(name):
      error(f'{where}: metadata.name {name!r} is not a DNS-1123 label')
    for path in REQUIRED.get(doc['kind'], []):
      if get(doc, path) in (None, [], {}):
        error(f'{where}: {path} is missing')
    if (doc['kind'], name) in {(k, n) for k, n in by_kind}:
      error(f'{where}: defined twice')
    by_kind[(doc['kind'], name)] = doc
  return by_kind
