#!/usr/bin/python3
"""Unit tests of the Python specialist (ctest: python_specialist_unit):
specialists/python/agentstream_specialist.py and agentstream_host.py driven
without sockets (a fake gRPC context), and the Forecaster's analysis on a
small database of its own.

Needs python3-grpcio and the stubs of the CMake target
python_specialist_stubs (AGENTSTREAM_PY_STUBS). Without python3-grpcio:
skipped (77), or failed under CI (tests/e2e/ci_policy.py).
"""

import calendar
import os
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'specialists', 'python'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'e2e'))

# Every wait of these tests; a failure, never a timing measurement.
DEADLINE_S = 10


class FakeContext:
  """What Host.analyze uses of grpc.ServicerContext."""

  def __init__(self):
    self.callbacks = []
    self.code = None
    self.details = None

  def add_callback(self, fn):
    self.callbacks.append(fn)
    return True

  def terminate(self):
    """As gRPC does when the call ends (here: the client cancelled)."""
    for fn in self.callbacks:
      fn()

  def set_code(self, code):
    self.code = code

  def set_details(self, details):
    self.details = details

  def abort(self, code, details):
    self.code, self.details = code, details
    raise RuntimeError('aborted')


class Scripted:
  """A specialist whose analysis the test scripts."""

  def __init__(self, body):
    self.body = body

  def card(self):
    return {'name': 'Scripted', 'display_name': 'Scripted', 'icon': 'S',
            'keywords': ['scripted'], 'version': '0.1'}

  def analyze(self, request, sink, cancel):
    return self.body(request, sink, cancel)


def request(task='do it', question='q', options=None):
  r = sdk.pb.specialist_pb2.AnalyzeRequest(request_id='req_1', task=task,
                                           question=question)
  if options:
    r.options.update(options)
  return r


class CancelTokenTest(unittest.TestCase):

  def test_wait_wakes_at_once_and_first_reason_wins(self):
    token = sdk.CancelToken()
    self.assertFalse(token.wait_for(0))
    threading.Timer(0.05, token.cancel, args=('client cancelled',)).start()
    self.assertTrue(token.wait_for(DEADLINE_S))
    self.assertFalse(token.cancel('shutdown'))
    self.assertEqual(token.reason, 'client cancelled')
    self.assertIsNotNone(token.cancelled_at)

  def test_sqlite_statement_interrupted(self):
    token = sdk.CancelToken()
    db = sqlite3.connect(':memory:')
    db.set_progress_handler(token.sqlite_progress_handler(), 100)
    token.cancel('client cancelled')
    with self.assertRaises(sqlite3.OperationalError):
      db.execute('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 '
                 'FROM c) SELECT COUNT(*) FROM c').fetchone()


class UpdateSinkTest(unittest.TestCase):

  def test_stamps_clamps_and_stops_when_gone(self):
    got = []
    accept = [True]

    def emit(u):
      if accept[0]:
        got.append(u)
      return accept[0]

    sink = sdk.UpdateSink('req_9', 'Scripted', 'h:1', emit,
                          clock_ns=lambda: 42)
    self.assertTrue(sink.progress(150, 'over'))
    self.assertTrue(sink.progress(30, 'back'))
    self.assertTrue(sink.tool_call('t', {'a': [1, 'x']}))
    self.assertTrue(sink.partial_result({'n': 2, 'nested': {'k': True}}))
    self.assertTrue(sink.thinking('why', visible=False))
    self.assertEqual([u.progress.progress for u in got[:2]], [100, 100])
    for u in got:
      self.assertEqual((u.request_id, u.specialist, u.instance, u.seq,
                        u.emitted_at), ('req_9', 'Scripted', 'h:1', 0, 42))
    self.assertEqual(sdk.struct_to_dict(got[3].partial_result.result),
                     {'n': 2.0, 'nested': {'k': True}})
    self.assertEqual(got[4].thinking.agent, 'Scripted')
    accept[0] = False
    self.assertFalse(sink.progress(100))
    self.assertEqual(sink.sent, 5)


class HostTest(unittest.TestCase):

  def host(self, body, **kwargs):
    return agentstream_host.Host(Scripted(body), instance='h:1', **kwargs)

  def test_describe_adds_instance(self):
    card = self.host(lambda *a: None).describe(None, FakeContext())
    self.assertEqual((card.name, card.instance, list(card.keywords)),
                     ('Scripted', 'h:1', ['scripted']))

  def test_ok_streams_every_update_in_order(self):
    def body(req, sink, cancel):
      for i in range(5):
        sink.progress(i * 25, f'step {i}')

    ctx = FakeContext()
    updates = list(self.host(body, queue_updates=2).analyze(request(), ctx))
    self.assertEqual([u.progress.progress for u in updates],
                     [0, 25, 50, 75, 100])
    self.assertIsNone(ctx.code)

  def test_invalid_requests_never_reach_analyze(self):
    called = []
    host = self.host(lambda *a: called.append(1))
    for req in (request(task='', question=''), request(task='x' * 16385)):
      ctx = FakeContext()
      self.assertEqual(list(host.analyze(req, ctx)), [])
      self.assertEqual(ctx.code, grpc.StatusCode.INVALID_ARGUMENT)
    self.assertEqual(called, [])

  def test_error_status(self):
    def body(req, sink, cancel):
      sink.thinking('trying')
      raise sdk.AnalysisError(grpc.StatusCode.FAILED_PRECONDITION, 'no db')

    ctx = FakeContext()
    self.assertEqual(len(list(self.host(body).analyze(request(), ctx))), 1)
    self.assertEqual((ctx.code, ctx.details),
                     (grpc.StatusCode.FAILED_PRECONDITION, 'no db'))

  def test_client_cancel_trips_the_token_and_ends_the_call(self):
    seen = {}
    recorded = threading.Event()

    def body(req, sink, cancel):
      sink.progress(1, 'waiting')
      seen['woke'] = cancel.wait_for(60)
      seen['reason'] = cancel.reason
      recorded.set()

    ctx = FakeContext()
    gen = self.host(body).analyze(request(), ctx)
    self.assertEqual(next(gen).progress.progress, 1)
    done = threading.Event()
    rest = []

    def drain():
      rest.extend(gen)
      done.set()

    threading.Thread(target=drain, daemon=True).start()
    ctx.terminate()
    self.assertTrue(done.wait(DEADLINE_S), 'the call did not end')
    self.assertEqual(rest, [])
    # The call ends once the token trips; the analysis' thread records what
    # it saw right after, on its own time.
    self.assertTrue(recorded.wait(DEADLINE_S), 'the analysis did not wake')
    self.assertEqual(seen, {'woke': True, 'reason': 'client cancelled'})
    self.assertEqual(ctx.code, grpc.StatusCode.CANCELLED)

  def test_capacity_and_shutdown(self):
    started = threading.Event()

    def body(req, sink, cancel):
      started.set()
      sink.progress(1)
      cancel.wait_for(60)

    host = self.host(body, max_analyses=1)
    ctx = FakeContext()
    gen = host.analyze(request(), ctx)
    threading.Thread(target=lambda: list(gen), daemon=True).start()
    self.assertTrue(started.wait(DEADLINE_S))
    busy = FakeContext()
    self.assertEqual(list(host.analyze(request(), busy)), [])
    self.assertEqual(busy.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
    self.assertEqual(host.health_status(''), 1)
    host.begin_shutdown()
    self.assertEqual(host.health_status(sdk.SERVICE_NAME), 2)
    self.assertIsNone(host.health_status('other'))
    late = FakeContext()
    self.assertEqual(list(host.analyze(request(), late)), [])
    self.assertEqual(late.code, grpc.StatusCode.UNAVAILABLE)
    self.assertEqual(host.drain(0), 1)
    deadline = time.monotonic() + DEADLINE_S
    while ctx.code is None and time.monotonic() < deadline:
      time.sleep(0.01)
    self.assertEqual((ctx.code, ctx.details),
                     (grpc.StatusCode.UNAVAILABLE,
                      'shut down before the analysis finished'))

  def test_health_messages(self):
    req_type, resp_type = agentstream_host._health_messages()  # pylint: disable=protected-access
    self.assertEqual(req_type.FromString(
        req_type(service='x').SerializeToString()).service, 'x')
    self.assertEqual(resp_type(status=1).SerializeToString(), b'\x08\x01')


class ForecasterTest(unittest.TestCase):

  def setUp(self):
    self.tmp = tempfile.TemporaryDirectory()
    self.db = os.path.join(self.tmp.name, 'tx.db')
    db = sqlite3.connect(self.db)
    db.execute('CREATE TABLE transactions (id INTEGER PRIMARY KEY, ts '
               'INTEGER, account TEXT, counterparty TEXT, category TEXT, '
               'country TEXT, channel TEXT, direction TEXT, amount_cents '
               'INTEGER)')
    # ACC-1: outflow 1000, 1100, ... 1500 over 2026-05..2026-10 (exactly
    # linear), inflow 2000 each month; ACC-2 noise that the scope excludes.
    rows = []
    for i, month in enumerate(range(5, 11)):
      ts = calendar.timegm((2026, month, 15, 12, 0, 0))
      rows.append((ts, 'ACC-1', 'debit', (1000 + 100 * i) * 100))
      rows.append((ts, 'ACC-1', 'credit', 2000 * 100))
      rows.append((ts, 'ACC-2', 'debit', 777 * 100))
    db.executemany("INSERT INTO transactions (ts, account, counterparty, "
                   "category, country, channel, direction, amount_cents) "
                   "VALUES (?, ?, 'c', 'k', 'US', 'ach', ?, ?)", rows)
    db.commit()
    db.close()

  def tearDown(self):
    self.tmp.cleanup()

  def run_analysis(self, question, cancel=None):
    got = []
    sink = sdk.UpdateSink('r', 'Forecaster', 'h:1',
                          lambda u: got.append(u) or True)
    forecaster.Forecaster(self.db, 0).analyze(
        request(task='forecast', question=question), sink,
        cancel or sdk.CancelToken())
    return got

  def test_scope(self):
    self.assertEqual(forecaster.parse_scope('acc-7 next six months', ''),
                     ('ACC-7', 12, 6))
    self.assertEqual(forecaster.parse_scope('next month, last 2 months', ''),
                     (None, 3, 1))

  def test_linear_history_projects_exactly(self):
    got = self.run_analysis('Forecast ACC-1 for the next 2 months, last 6 '
                            'months')
    kinds = [u.WhichOneof('kind') for u in got]
    self.assertEqual(kinds.count('tool_call'), 1)
    results = [sdk.struct_to_dict(u.partial_result.result) for u in got
               if u.HasField('partial_result')]
    self.assertEqual([r['part'] for r in results],
                     ['history', 'fit', 'forecast', 'summary'])
    self.assertEqual([m['outflow'] for m in results[0]['months']],
                     [1000, 1100, 1200, 1300, 1400, 1500])
    self.assertEqual(results[1]['outflow']['slope_per_month'], 100)
    self.assertEqual(results[1]['outflow']['trend'], 'rising')
    self.assertEqual(results[1]['inflow']['trend'], 'flat')
    forecast = results[2]['months']
    self.assertEqual([(m['month'], m['outflow'], m['outflow_low'],
                       m['outflow_high']) for m in forecast],
                     [('2026-11', 1600, 1600, 1600),
                      ('2026-12', 1700, 1700, 1700)])
    self.assertEqual(results[3]['projected_outflow'], 3300)
    self.assertEqual(got[-1].progress.progress, 100)

  def test_cancelled_before_the_query(self):
    token = sdk.CancelToken()
    token.cancel('client cancelled')
    got = self.run_analysis('forecast ACC-1', cancel=token)
    self.assertNotIn('tool_call', [u.WhichOneof('kind') for u in got])

  def test_missing_database(self):
    f = forecaster.Forecaster(os.path.join(self.tmp.name, 'none.db'), 0)
    with self.assertRaises(sdk.AnalysisError) as e:
      f.analyze(request(), sdk.UpdateSink('r', 'F', '', lambda u: True),
                sdk.CancelToken())
    self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)


if __name__ == '__main__':
  from ci_policy import skip_or_fail  # pylint: disable=wrong-import-position
  try:
    import grpc  # pylint: disable=wrong-import-position
  except ImportError:
    sys.exit(skip_or_fail('python_specialist_unit', 'python3-grpcio is not '
                          'installed (deploy/local/install_deps.sh test)'))
  import agentstream_specialist as sdk  # pylint: disable=wrong-import-position
  stubs = os.environ.get('AGENTSTREAM_PY_STUBS', sdk.default_stubs_dir())
  sdk.load_stubs(stubs)
  import agentstream_host  # pylint: disable=wrong-import-position
  import forecaster  # pylint: disable=wrong-import-position
  unittest.main()
