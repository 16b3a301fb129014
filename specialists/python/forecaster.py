#!/usr/bin/python3
"""Forecaster: a specialist in Python (docs/SPECIALISTS.md, "A specialist in
another language: Python").

Projects an account's monthly inflow and outflow a few months ahead: it
reads the monthly totals of the transactions data set (docs/DATA.md; the
database the database specialists create, opened read-only per analysis),
fits a least-squares line to each and extends it with a 95 % prediction
band. Scope: the first `ACC-<digits>` of the task, then the question (none:
every account); the history is the last 12 months before the data set's
end (or the question's `last|past N months`, at least 3); the horizon is
`next N months` (default 3, at most 24).

Streams, paced by --pace-ms (or the request's option `pace_ms`) between
steps so that a person sees it work: thinking, progress, one `data_query`
tool call (the SQL as executed and its parameters), then the partial
results `history`, `fit`, `forecast` and `summary` (`part` tells them
apart). Every wait is on the cancel token, and the query runs under SQLite's
progress handler, so a cancelled analysis stops at once.
"""

import calendar
import contextlib
import datetime
import math
import os
import re
import sqlite3
import sys
import urllib.parse

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentstream_specialist as sdk  # noqa: E402 pylint: disable=wrong-import-position

DEFAULT_HISTORY_MONTHS = 12
MIN_HISTORY_MONTHS = 3
DEFAULT_HORIZON = 3
MAX_HORIZON = 24
# A slope beyond ±2 % of the mean per month is a trend, not noise.
TREND_THRESHOLD = 0.02
# Two-sided 95 % of the normal distribution: the prediction band.
Z_95 = 1.96
# SQLite VM steps between two looks at the cancel token.
PROGRESS_HANDLER_STEPS = 1000

NUMBER_WORDS = {'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5,
                'six': 6, 'seven': 7, 'eight': 8, 'nine': 9, 'ten': 10,
                'eleven': 11, 'twelve': 12}
ACCOUNT_RE = re.compile(r'\bACC-\d+\b', re.IGNORECASE)
HORIZON_RE = re.compile(r'\bnext\s+(\d+|[a-z]+)\s+months?\b', re.IGNORECASE)
NEXT_MONTH_RE = re.compile(r'\bnext\s+month\b', re.IGNORECASE)
HISTORY_RE = re.compile(r'\b(?:last|past)\s+(\d+|[a-z]+)\s+months\b',
                        re.IGNORECASE)

SQL = ("SELECT strftime('%Y-%m', ts, 'unixepoch') AS month, COUNT(*),\n"
       "       COALESCE(SUM(CASE WHEN direction='credit' THEN amount_cents "
       "END), 0),\n"
       "       COALESCE(SUM(CASE WHEN direction='debit'  THEN amount_cents "
       "END), 0)\n"
       "FROM transactions\n"
       "WHERE ts >= ? AND ts < ?{account}\n"
       "GROUP BY month ORDER BY month")


def _number(text):
  return int(text) if text.isdigit() else NUMBER_WORDS.get(text.lower())


def parse_scope(question, task):
  """(account or None, history months, horizon) from the task first, then
  the question."""
  text = f'{task}\n{question}'
  m = ACCOUNT_RE.search(task) or ACCOUNT_RE.search(question)
  account = m.group(0).upper() if m else None
  horizon = DEFAULT_HORIZON
  m = HORIZON_RE.search(text)
  if m and _number(m.group(1)):
    horizon = _number(m.group(1))
  elif NEXT_MONTH_RE.search(text):
    horizon = 1
  history = DEFAULT_HISTORY_MONTHS
  m = HISTORY_RE.search(text)
  if m and _number(m.group(1)):
    history = _number(m.group(1))
  return (account, max(MIN_HISTORY_MONTHS, min(history, 120)),
          max(1, min(horizon, MAX_HORIZON)))


def add_months(year, month, n):
  index = year * 12 + (month - 1) + n
  return index // 12, index % 12 + 1


def iso(ts):
  return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
      '%Y-%m-%dT%H:%M:%SZ')


def fit_line(values):
  """Least squares of values over x = 0..n-1: slope, intercept, r2,
  residual stddev (n - 2 degrees of freedom), and what the band needs."""
  n = len(values)
  mean_x = (n - 1) / 2
  mean_y = sum(values) / n
  sxx = sum((x - mean_x) ** 2 for x in range(n))
  sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
  slope = sxy / sxx if sxx else 0.0
  intercept = mean_y - slope * mean_x
  residuals = [y - (intercept + slope * x) for x, y in enumerate(values)]
  sse = sum(r * r for r in residuals)
  sst = sum((y - mean_y) ** 2 for y in values)
  return {'slope': slope, 'intercept': intercept, 'mean': mean_y,
          'r2': 1 - sse / sst if sst else 1.0,
          'sd': math.sqrt(sse / (n - 2)) if n > 2 else 0.0,
          'n': n, 'mean_x': mean_x, 'sxx': sxx}


def project(fit, x):
  """(value, low, high) at x, the band being the 95 % prediction interval;
  amounts cannot go below 0."""
  value = fit['intercept'] + fit['slope'] * x
  half = Z_95 * fit['sd'] * math.sqrt(
      1 + 1 / fit['n'] + ((x - fit['mean_x']) ** 2 / fit['sxx']
                          if fit['sxx'] else 0))
  return (round(max(0.0, value), 2), round(max(0.0, value - half), 2),
          round(max(0.0, value + half), 2))


def trend_of(fit):
  if fit['mean'] <= 0:
    return 'flat'
  relative = fit['slope'] / fit['mean']
  if relative > TREND_THRESHOLD:
    return 'rising'
  if relative < -TREND_THRESHOLD:
    return 'falling'
  return 'flat'


def fit_summary(fit):
  return {'slope_per_month': round(fit['slope'], 2),
          'intercept': round(fit['intercept'], 2),
          'mean': round(fit['mean'], 2), 'r2': round(fit['r2'], 4),
          'residual_stddev': round(fit['sd'], 2), 'trend': trend_of(fit)}


class Forecaster(sdk.Specialist):
  """Stateless between analyses: each opens its own read-only connection."""

  def __init__(self, db_path, pace_ms):
    self.db_path = db_path
    self.pace_ms = pace_ms

  def card(self):
    return {
        'name': 'Forecaster',
        'display_name': 'Forecaster',
        'icon': '\U0001F4C8',  # chart with upwards trend
        'description': (
            'Projects monthly inflow and outflow a few months ahead from a '
            'least-squares trend of the history, with a 95% prediction '
            'band. Written in Python.'),
        'skills': ['monthly forecast', 'trend projection',
                   'prediction interval'],
        'keywords': ['forecast', 'forecasting', 'projection', 'project',
                     'predict', 'prediction', 'outlook', 'extrapolate',
                     'next month', 'next months', 'coming months'],
        'version': '1.0.0',
    }

  def _pace(self, request):
    option = sdk.struct_to_dict(request.options).get('pace_ms')
    try:
      pace = self.pace_ms if option is None else float(option)
    except (TypeError, ValueError):
      raise sdk.AnalysisError(grpc.StatusCode.INVALID_ARGUMENT,
                              f'pace_ms: not a number: {option!r}') from None
    if not 0 <= pace <= 60000:
      raise sdk.AnalysisError(grpc.StatusCode.INVALID_ARGUMENT,
                              f'pace_ms: {pace} is not in 0..60000')
    return pace / 1000

  def _connect(self):
    if not os.path.isfile(self.db_path):
      raise sdk.AnalysisError(
          grpc.StatusCode.FAILED_PRECONDITION,
          f'no database at {self.db_path} (the database specialists create '
          'it: docs/DATA.md)')
    uri = f'file:{urllib.parse.quote(os.path.abspath(self.db_path))}?mode=ro'
    return sqlite3.connect(uri, uri=True)

  def analyze(self, request, sink, cancel):
    pace = self._pace(request)
    account, history, horizon = parse_scope(request.question, request.task)
    who = account or 'all accounts'
    sink.thinking(
        f'I will read the monthly inflow and outflow of {who} over the last '
        f'{history} months, fit a least-squares line to each and project it '
        f'{horizon} month{"s" if horizon > 1 else ""} ahead with a 95% '
        'prediction band.')
    sink.progress(5, 'Reading the scope')
    with contextlib.closing(self._connect()) as db:
      db.set_progress_handler(cancel.sqlite_progress_handler(),
                              PROGRESS_HANDLER_STEPS)
      try:
        newest = db.execute('SELECT MAX(ts) FROM transactions').fetchone()[0]
        if newest is None:
          raise sdk.AnalysisError(grpc.StatusCode.FAILED_PRECONDITION,
                                  'the database has no transactions')
        # The data set's end: the UTC midnight after its newest row
        # (docs/DATA.md, "Scope"); the history ends there.
        end = (newest // 86400 + 1) * 86400
        end_day = datetime.datetime.fromtimestamp(end, datetime.timezone.utc)
        y, m = add_months(end_day.year, end_day.month, -history)
        day = min(end_day.day, calendar.monthrange(y, m)[1])
        start = int(datetime.datetime(y, m, day,
                                      tzinfo=datetime.timezone.utc).timestamp())
        params = [start, end] + ([account] if account else [])
        sql = SQL.format(account=' AND account = ?' if account else '')
        if cancel.wait_for(pace):
          return
        sink.tool_call('data_query', {'query': 'monthly_flows', 'sql': sql,
                                      'params': params})
        sink.progress(15, 'Querying monthly flows')
        rows = db.execute(sql, params).fetchall()
      except sqlite3.OperationalError as e:
        if cancel.cancelled():
          return
        raise sdk.AnalysisError(grpc.StatusCode.INTERNAL, f'query: {e}')
    scope = {'account': account, 'history_months': history,
             'from': iso(start), 'to': iso(end), 'from_ts': start,
             'to_ts': end}
    months = [{'month': r[0], 'count': r[1], 'inflow': r[2] / 100,
               'outflow': r[3] / 100, 'net': (r[2] - r[3]) / 100}
              for r in rows]
    sink.partial_result({'part': 'history', 'scope': scope,
                         'months': months})
    sink.progress(35, 'Monthly flows read')
    if len(months) < 2:
      sink.partial_result({
          'part': 'summary', 'horizon': horizon, 'months_of_history':
          len(months), 'summary': f'Not enough history to forecast {who}: '
          f'{len(months)} month(s) with transactions in the last {history}.'})
      sink.progress(100, 'Done')
      return
    if cancel.wait_for(pace):
      return
    sink.thinking(f'{len(months)} months of history; fitting a line to the '
                  'outflow and to the inflow.')
    sink.progress(50, 'Fitting the trend')
    outflow = fit_line([x['outflow'] for x in months])
    inflow = fit_line([x['inflow'] for x in months])
    if cancel.wait_for(pace):
      return
    sink.partial_result({'part': 'fit', 'method': 'least squares',
                         'outflow': fit_summary(outflow),
                         'inflow': fit_summary(inflow)})
    sink.progress(70, 'Projecting')
    if cancel.wait_for(pace):
      return
    last_y, last_m = map(int, months[-1]['month'].split('-'))
    projected = []
    for k in range(1, horizon + 1):
      x = len(months) - 1 + k
      out, out_low, out_high = project(outflow, x)
      inc, inc_low, inc_high = project(inflow, x)
      y, m = add_months(last_y, last_m, k)
      projected.append({'month': f'{y:04d}-{m:02d}', 'outflow': out,
                        'outflow_low': out_low, 'outflow_high': out_high,
                        'inflow': inc, 'inflow_low': inc_low,
                        'inflow_high': inc_high, 'net': round(inc - out, 2)})
    sink.partial_result({'part': 'forecast', 'horizon': horizon,
                         'confidence': 0.95, 'months': projected})
    sink.progress(90, 'Summarising')
    if cancel.wait_for(pace):
      return
    total_out = round(sum(p['outflow'] for p in projected), 2)
    sink.partial_result({
        'part': 'summary', 'horizon': horizon,
        'months_of_history': len(months),
        'outflow_trend': trend_of(outflow), 'inflow_trend': trend_of(inflow),
        'projected_outflow': total_out,
        'projected_inflow': round(sum(p['inflow'] for p in projected), 2),
        'summary': (
            f'Outflow of {who} is {trend_of(outflow)} '
            f'({fit_summary(outflow)["slope_per_month"]:+,.2f} a month over '
            f'{len(months)} months); projected {total_out:,.2f} over the '
            f'next {horizon} month{"s" if horizon > 1 else ""} '
            f'({projected[0]["month"]}: {projected[0]["outflow"]:,.2f}, 95% '
            f'band {projected[0]["outflow_low"]:,.2f}-'
            f'{projected[0]["outflow_high"]:,.2f}).')})
    sink.progress(100, 'Done')


def add_flags(parser):
  parser.add_argument(
      '--db', default=os.environ.get('AGENTSTREAM_DB', 'var/agentstream.db'),
      help='the transactions database (docs/DATA.md), opened read-only per '
      'analysis (default %(default)s) [AGENTSTREAM_DB]')
  parser.add_argument(
      '--pace-ms', type=float,
      default=float(os.environ.get('AGENTSTREAM_PACE_MS', 200)),
      help='pause between the analysis\'s steps, 0..60000; a request\'s '
      'option pace_ms overrides it (default %(default)s) '
      '[AGENTSTREAM_PACE_MS]')


def make(args):
  if not 0 <= args.pace_ms <= 60000:
    raise ValueError(f'--pace-ms {args.pace_ms} is not in 0..60000')
  return Forecaster(args.db, args.pace_ms)


if __name__ == '__main__':
  sys.exit(sdk.main(make, program='forecaster.py', description=__doc__,
                    add_flags=add_flags))
