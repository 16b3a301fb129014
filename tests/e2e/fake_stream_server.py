#!/usr/bin/python3
"""A fake agentstream gateway for developing the web client, stdlib only.

Serves gateway/web/ and a scripted, realistic run on the SSE wire of DESIGN
section 3 (`GET /api/chat/stream`, `GET /api/specialists`, `DELETE
/api/runs/{id}`, `/healthz`, `/readyz`) on 127.0.0.1. It is a development aid
to look at the page without the real system; it is NOT what the browser e2e
test runs against (that is run_browser_e2e.sh, on the real binaries).

  /usr/bin/python3 tests/e2e/fake_stream_server.py --port 0 --port-file /tmp/p
  open http://127.0.0.1:$(cat /tmp/p)/

Scenarios, picked from the question text: a question containing "fail" makes
RiskAnalyst fail mid-way (an `error` update, outcome partial); "slow" makes
ComplianceExpert pass its soft deadline (a `timeout` update).
"""

import argparse
import json
import mimetypes
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEB_ROOT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                 'gateway', 'web'))

CARDS = [
    {
        'name': 'DataAnalyst',
        'display_name': 'Data Analyst',
        'icon': '📊',
        'description': 'Runs SQL over the transactions: totals, trends, '
                       'counterparties, outliers.',
        'keywords': ['data', 'totals', 'trend', 'transactions', 'spending'],
        'available': True,
    },
    {
        'name': 'RiskAnalyst',
        'display_name': 'Risk Analyst',
        'icon': '⚖️',
        'description': 'Volatility, concentration and exposure: a risk '
                       'score with confidence.',
        'keywords': ['risk', 'volatility', 'exposure', 'concentration'],
        'available': True,
    },
    {
        'name': 'ComplianceExpert',
        'display_name': 'Compliance Expert',
        'icon': '🛡️',
        'description': 'AML rules (structuring, velocity, high-risk '
                       'jurisdictions) and PII in the request.',
        'keywords': ['aml', 'compliance', 'structuring', 'pii', 'kyc'],
        'available': True,
    },
    {
        'name': 'Synthetic',
        'display_name': 'Synthetic',
        'icon': '🧪',
        'description': 'Emits N updates of S bytes at R per second.',
        'keywords': ['synthetic', 'benchmark'],
        'available': True,
        'explicit_only': True,
    },
]

ACTIVE_RUNS = {}
ACTIVE_LOCK = threading.Lock()


def script(question):
    """The scripted run: a list of (delay_s, update-without-envelope)."""
    fail = 'fail' in question.lower()
    slow = 'slow' in question.lower()
    account = (re.search(r'ACC-\d+', question) or ['ACC-1042'])[0]
    da, ra, ce = 'DataAnalyst', 'RiskAnalyst', 'ComplianceExpert'
    steps = [
        (0.2, {'type': 'status', 'status': 'analyzing',
               'message': 'Reading the question'}),
        (0.3, {'type': 'thinking', 'agent': 'Orchestrator', 'visible': True,
               'thought': f'The question names account {account} and a '
                          'period (last 6 months); it asks about risk and '
                          'AML compliance.'}),
        (0.2, {'type': 'thinking', 'agent': 'Orchestrator', 'visible': True,
               'thought': 'Matched keywords: "risk" -> RiskAnalyst, "AML", '
                          '"compliance" -> ComplianceExpert; DataAnalyst '
                          'provides the figures both build on.'}),
        (0.2, {'type': 'status', 'status': 'delegating',
               'message': 'Delegating to 3 specialists'}),
    ]
    for name in (da, ra, ce):
        card = next(c for c in CARDS if c['name'] == name)
        task = {
            da: f'Totals, monthly trend, top counterparties and outliers '
                f'for {account}, last 6 months',
            ra: f'Volatility, concentration and exposure of {account}; '
                'risk score',
            ce: f'AML screening of {account}: structuring, velocity, '
                'high-risk jurisdictions; PII in the request',
        }[name]
        steps.append((0.1, {'type': 'specialist_activated', 'specialist': name,
                            'task': task, 'icon': card['icon'],
                            'display_name': card['display_name']}))
    sql_totals = ('SELECT COUNT(*) AS n,\n'
                  '       SUM(CASE WHEN direction = \'credit\' THEN amount '
                  'ELSE 0 END) AS inflow,\n'
                  '       SUM(CASE WHEN direction = \'debit\' THEN amount '
                  'ELSE 0 END) AS outflow\n'
                  '  FROM transactions\n'
                  ' WHERE account_id = ? AND ts >= ? AND ts < ?')
    sql_trend = ('SELECT strftime(\'%Y-%m\', ts) AS month, SUM(amount) AS '
                 'total, COUNT(*) AS n\n  FROM transactions\n WHERE '
                 'account_id = ? AND ts >= ?\n GROUP BY month ORDER BY month')
    sql_struct = ('SELECT id, ts, amount FROM transactions\n WHERE account_id '
                  '= ? AND channel = \'cash\' AND direction = \'credit\'\n   '
                  'AND amount BETWEEN 8000 AND 9999.99\n ORDER BY ts')
    params = [account, '2026-05-01T00:00:00Z', '2026-11-01T00:00:00Z']
    interleaved = [
        (0.3, {'type': 'thinking', 'specialist': da, 'agent': da,
               'visible': True,
               'thought': f'Scope: {account}, 2026-05-01 to 2026-10-31 '
                          '(6 months before the newest transaction).'}),
        (0.1, {'type': 'progress', 'specialist': ra, 'progress': 5,
               'current_action': 'Loading monthly flows'}),
        (0.2, {'type': 'tool_call', 'specialist': da, 'tool': 'data_query',
               'parameters': {'sql': sql_totals, 'params': params}}),
        (0.2, {'type': 'progress', 'specialist': ce, 'progress': 10,
               'current_action': 'Scanning the request text for PII'}),
        (0.3, {'type': 'progress', 'specialist': da, 'progress': 25,
               'current_action': 'Computed totals'}),
        (0.1, {'type': 'partial_result', 'specialist': da,
               'result': {'query': 'totals', 'transactions': 412,
                          'inflow': 186420.55, 'outflow': 171203.1,
                          'net': 15217.45, 'currency': 'EUR'}}),
        (0.2, {'type': 'thinking', 'specialist': ce, 'agent': ce,
               'visible': True,
               'thought': 'No e-mail, phone, card number or IBAN in the '
                          'request text.'}),
        (0.2, {'type': 'tool_call', 'specialist': ce, 'tool': 'data_query',
               'parameters': {'sql': sql_struct, 'params': [account]}}),
        (0.2, {'type': 'progress', 'specialist': ra, 'progress': 35,
               'current_action': 'Volatility of monthly flows'}),
        (0.2, {'type': 'tool_call', 'specialist': da, 'tool': 'data_query',
               'parameters': {'sql': sql_trend, 'params': params[:2]}}),
        (0.3, {'type': 'progress', 'specialist': ce, 'progress': 45,
               'current_action': 'Structuring rule: cash deposits just '
                                 'under 10,000 within 7 days'}),
        (0.2, {'type': 'partial_result', 'specialist': da,
               'result': {'query': 'monthly_trend', 'months': [
                   {'month': '2026-05', 'inflow': 28110.0, 'outflow': 26990.4,
                    'n': 61},
                   {'month': '2026-06', 'inflow': 30452.2,
                    'outflow': 27780.0, 'n': 64},
                   {'month': '2026-07', 'inflow': 25980.0,
                    'outflow': 29311.7, 'n': 58},
                   {'month': '2026-08', 'inflow': 41288.35,
                    'outflow': 30112.0, 'n': 97},
                   {'month': '2026-09', 'inflow': 29870.0,
                    'outflow': 28004.0, 'n': 66},
                   {'month': '2026-10', 'inflow': 30720.0,
                    'outflow': 29005.0, 'n': 66}]}}),
        (0.1, {'type': 'progress', 'specialist': da, 'progress': 55,
               'current_action': 'Monthly trend done; top counterparties'}),
        (0.3, {'type': 'partial_result', 'specialist': ra,
               'result': {'query': 'volatility', 'monthly_cv': 0.182,
                          'max_month_change_pct': 38.4}}),
        (0.1, {'type': 'progress', 'specialist': ra, 'progress': 60,
               'current_action': 'Concentration (HHI) over counterparties'}),
        (0.3, {'type': 'partial_result', 'specialist': ce,
               'result': {'query': 'structuring', 'rule': 'cash credits '
                          '8,000-9,999.99, >= 3 within 7 days',
                          'hits': 4, 'transaction_ids': [88121, 88140, 88152,
                                                         88177]}}),
    ]
    if fail:
        interleaved.append((0.2, {
            'type': 'error', 'specialist': ra, 'code': 'unavailable',
            'message': 'RiskAnalyst stopped responding (connection reset)',
            'retryable': True}))
    if slow:
        interleaved.append((0.2, {
            'type': 'timeout', 'specialist': ce, 'action': 'continuing',
            'message': 'ComplianceExpert passed its soft deadline (5 s)'}))
    interleaved += [
        (0.2, {'type': 'progress', 'specialist': da, 'progress': 80,
               'current_action': 'Outliers against own history'}),
        (0.2, {'type': 'partial_result', 'specialist': da,
               'result': {'query': 'top_counterparties', 'counterparties': [
                   {'counterparty': 'Nordwind Trading GmbH', 'total': 61220.0,
                    'share_pct': 32.8},
                   {'counterparty': 'Cash deposit', 'total': 37968.1,
                    'share_pct': 20.4},
                   {'counterparty': 'Atlas Freight', 'total': 14002.5,
                    'share_pct': 7.5}]}}),
        (0.2, {'type': 'progress', 'specialist': ce, 'progress': 75,
               'current_action': 'Velocity bursts'}),
        (0.3, {'type': 'progress', 'specialist': da, 'progress': 100,
               'current_action': 'Done'}),
        (0.1, {'type': 'partial_result', 'specialist': da,
               'result': {'query': 'outliers', 'outliers': 3,
                          'largest': 24850.0, 'z_score': 4.1}}),
        (0.1, {'type': 'specialist_complete', 'specialist': da,
               'outcome': 'ok', 'duration_ms': 3120}),
        (0.0, {'type': 'synthesis', 'message': 'DataAnalyst reported',
               'specialists_complete': [da],
               'specialists_pending': [ra, ce]}),
    ]
    if not fail:
        interleaved += [
            (0.3, {'type': 'progress', 'specialist': ra, 'progress': 85,
                   'current_action': 'Exposure by country and category'}),
            (0.3, {'type': 'partial_result', 'specialist': ra,
                   'result': {'query': 'risk_score', 'risk_score': 7.4,
                              'confidence': 0.86, 'hhi': 0.214,
                              'high_risk_country_share_pct': 12.5}}),
            (0.1, {'type': 'progress', 'specialist': ra, 'progress': 100,
                   'current_action': 'Done'}),
            (0.1, {'type': 'specialist_complete', 'specialist': ra,
                   'outcome': 'ok', 'duration_ms': 3740}),
        ]
    else:
        interleaved.append((0.1, {'type': 'specialist_complete',
                                  'specialist': ra, 'outcome': 'failed',
                                  'duration_ms': 2210}))
    interleaved += [
        (0.0, {'type': 'synthesis', 'message': f'{"RiskAnalyst failed; " if fail else "RiskAnalyst reported; "}'
               'waiting for ComplianceExpert',
               'specialists_complete': [da] + ([] if fail else [ra]),
               'specialists_pending': [ce]}),
        (0.4, {'type': 'partial_result', 'specialist': ce,
               'result': {'query': 'velocity', 'bursts': 1,
                          'max_per_day': 14, 'high_risk_jurisdictions': [
                              'IR', 'KP']}}),
        (0.2, {'type': 'progress', 'specialist': ce, 'progress': 100,
               'current_action': 'Done'}),
        (0.1, {'type': 'specialist_complete', 'specialist': ce,
               'outcome': 'ok', 'duration_ms': 4510}),
        (0.0, {'type': 'synthesis', 'message': 'All specialists reported',
               'specialists_complete': [da, ce] + ([] if fail else [ra]),
               'specialists_pending': []}),
        (0.2, {'type': 'status', 'status': 'synthesizing',
               'message': 'Combining the findings'}),
    ]
    answer = (f'Account {account} moved 186,420.55 in and 171,203.10 out '
              'over the last 6 months (412 transactions, net +15,217.45). ')
    answer += ('Its risk is elevated: score 7.4/10 (confidence 0.86), driven '
               'by a concentrated counterparty base (HHI 0.21). ' if not fail
               else 'The risk assessment is missing: RiskAnalyst failed. ')
    answer += ('Compliance found 4 cash deposits just under the 10,000 '
               'reporting threshold within 6 days (structuring) and one '
               'velocity burst of 14 transactions in a day.')
    figures = {
        da: {'inflow': 186420.55, 'outflow': 171203.1, 'net': 15217.45,
             'transactions': 412},
        ce: {'structuring_hits': 4, 'velocity_bursts': 1},
    }
    if not fail:
        figures[ra] = {'risk_score': 7.4, 'confidence': 0.86, 'hhi': 0.214}
    steps += interleaved
    steps.append((0.3, {'type': 'complete',
                        'outcome': 'partial' if fail else 'ok',
                        'result': {'answer': answer, 'specialists': figures,
                                   'missing': [ra] if fail else []}}))
    return steps


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'agentstream-fake/1'

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write('fake: ' + (fmt % args) + '\n')

    def send_json(self, code, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_DELETE(self):
        m = re.fullmatch(r'/api/runs/([A-Za-z0-9._-]+)', self.path)
        if not m:
            self.send_json(404, {'error': 'not_found', 'message': self.path})
            return
        with ACTIVE_LOCK:
            ev = ACTIVE_RUNS.get(m.group(1))
        if ev is None:
            self.send_json(404, {'error': 'not_found',
                                 'message': 'no such run'})
            return
        ev.set()
        self.send_json(200, {'cancelled': True})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == '/api/chat/stream':
            self.stream(urllib.parse.parse_qs(url.query))
        elif url.path == '/api/specialists':
            self.send_json(200, {'specialists': CARDS})
        elif url.path in ('/healthz', '/readyz'):
            self.send_json(200, {'status': 'ok'})
        else:
            self.static(url.path)

    def static(self, path):
        rel = 'index.html' if path in ('', '/') else path.lstrip('/')
        full = os.path.normpath(os.path.join(self.server.web_root, rel))
        if not full.startswith(self.server.web_root + os.sep) or \
                not os.path.isfile(full):
            self.send_json(404, {'error': 'not_found', 'message': path})
            return
        ctype = mimetypes.guess_type(full)[0] or 'application/octet-stream'
        if full.endswith('.js'):
            ctype = 'text/javascript'
        with open(full, 'rb') as f:
            data = f.read()
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Cache-Control', 'no-cache')
        self.end_headers()
        self.wfile.write(data)

    def stream(self, query):
        message = (query.get('message') or [''])[0].strip()
        if not message:
            self.send_json(400, {'error': 'invalid_argument',
                                 'message': 'message is required'})
            return
        if self.headers.get('Last-Event-ID'):
            # The scripted run is over or gone: tell EventSource to stop.
            self.send_response(204)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        rid = 'req_' + secrets.token_hex(8)
        cancel = threading.Event()
        with ACTIVE_LOCK:
            ACTIVE_RUNS[rid] = cancel
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream; charset=utf-8')
        self.send_header('Cache-Control', 'no-cache')
        self.send_header('X-Accel-Buffering', 'no')
        self.send_header('X-Request-Id', rid)
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True

        def send(event, data, eid=None):
            out = ''
            if eid is not None:
                out += f'id: {eid}\n'
            out += f'event: {event}\n'
            for line in json.dumps(data).split('\n'):
                out += f'data: {line}\n'
            self.wfile.write((out + '\n').encode())
            self.wfile.flush()

        try:
            self.wfile.write(b'retry: 2000\n\n')
            send('connected', {'type': 'connected', 'status': 'connected',
                               'request_id': rid}, f'{rid}:0')
            seq = 0
            final = 'complete'
            for delay, body in script(message):
                if cancel.wait(delay * self.server.scale):
                    final = 'cancelled'
                    break
                seq += 1
                update = {'type': body['type'], 'request_id': rid, 'seq': seq,
                          'emitted_at_ns': time.time_ns()}
                update.update({k: v for k, v in body.items() if k != 'type'})
                send('message', update, f'{rid}:{seq}')
                if body['type'] in ('error', 'timeout'):
                    send(body['type'], update, f'{rid}:{seq}')
            if final == 'cancelled':
                for st, extra in (('specialist_complete', None),
                                  ('complete', None)):
                    seq += 1
                    upd = {'type': st, 'request_id': rid, 'seq': seq,
                           'emitted_at_ns': time.time_ns(),
                           'outcome': 'cancelled'}
                    if st == 'complete':
                        upd['result'] = {'answer': '', 'specialists': {},
                                         'missing': []}
                    else:
                        upd['specialist'] = 'ComplianceExpert'
                        upd['duration_ms'] = 0
                    send('message', upd, f'{rid}:{seq}')
            send('done', {'type': 'done', 'status': final, 'request_id': rid},
                 f'{rid}:{seq}')
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with ACTIVE_LOCK:
                ACTIVE_RUNS.pop(rid, None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--port-file')
    parser.add_argument('--web-root', default=WEB_ROOT)
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiply every scripted delay by this')
    parser.add_argument('--verbose', action='store_true')
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.web_root = os.path.abspath(args.web_root)
    server.scale = args.scale
    server.verbose = args.verbose
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write(f'{port}\n')
        os.replace(tmp, args.port_file)
    print(f'fake gateway on http://{args.host}:{port}/', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
