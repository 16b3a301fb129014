#!/usr/bin/python3
"""SSE over http.client, for launcher_e2e.py: one response read event by
event (every read bounded), and a new Synthetic run started through the
gateway. Stdlib only.
"""

import http.client
import json
import time

from launcher_support import CheckFailed, check

# A read on a stream that takes longer is a failure (Synthetic sends 10 a
# second; the gateway's heartbeat comes every 15 s).
READ_TIMEOUT_S = 30


class Stream:
    """One SSE response, read event by event."""

    def __init__(self, port, method, path, body=None, headers=None):
        self.conn = http.client.HTTPConnection('127.0.0.1', port,
                                               timeout=READ_TIMEOUT_S)
        hdrs = {'Accept': 'text/event-stream'}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs['Content-Type'] = 'application/json'
        hdrs.update(headers or {})
        self.conn.request(method, path, body=data, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.events = []  # dicts: id, event, data (parsed JSON), raw
        self.ended = None  # 'eof' or 'broken: ...'

    def next_event(self):
        """The next event, or None at the end of the stream (self.ended)."""
        cur = {}
        while True:
            try:
                raw = self.resp.readline()
            except (http.client.HTTPException, OSError) as e:
                self.ended = f'broken: {type(e).__name__}: {e}'
                return None
            if not raw:
                self.ended = 'eof'
                return None
            line = raw.decode('utf-8', 'replace').rstrip('\r\n')
            if line == '':
                if 'data' in cur or 'event' in cur:
                    try:
                        cur['json'] = json.loads(cur.get('data', ''))
                    except ValueError:
                        cur['json'] = {}
                    self.events.append(cur)
                    return cur
                cur = {}
            elif line.startswith(':'):
                continue
            else:
                field, _, value = line.partition(':')
                value = value[1:] if value.startswith(' ') else value
                if field == 'data':
                    cur['data'] = (cur['data'] + '\n' + value
                                   if 'data' in cur else value)
                elif field in ('id', 'event'):
                    cur[field] = value

    def read_until(self, what, pred, timeout):
        """Reads events until pred(self) holds; bounded."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            if time.monotonic() > deadline:
                raise CheckFailed(f'{what}: not within {timeout} s '
                                  f'({self.summary()})')
            if self.next_event() is None:
                if pred(self):
                    break
                raise CheckFailed(f'{what}: the stream ended ({self.ended}) '
                                  f'first ({self.summary()})')

    def read_to_end(self, timeout):
        deadline = time.monotonic() + timeout
        while self.next_event() is not None:
            if time.monotonic() > deadline:
                raise CheckFailed(f'the stream did not end within {timeout} s '
                                  f'({self.summary()})')
        self.close()

    def close(self):
        self.conn.close()

    # What was read.
    def updates(self):
        """The run's updates: `message` events with a seq."""
        return [e for e in self.events if e.get('event') == 'message']

    def of_type(self, kind):
        return [e['json'] for e in self.updates()
                if e['json'].get('type') == kind]

    def named(self, name):
        return [e['json'] for e in self.events if e.get('event') == name]

    def seqs(self, rid):
        out = []
        for e in self.updates():
            prefix = rid + ':'
            if not e.get('id', '').startswith(prefix):
                raise CheckFailed(f'event id {e.get("id")!r} is not of run '
                                  f'{rid}')
            out.append(int(e['id'][len(prefix):]))
        return out

    def summary(self):
        kinds = {}
        for e in self.events:
            k = e.get('event', 'message')
            if k == 'message':
                k = e['json'].get('type', '?')
            kinds[k] = kinds.get(k, 0) + 1
        return f'HTTP {self.status}, events {kinds}, ended {self.ended}'


def start_run(launcher, options, question):
    s = Stream(launcher.gw, 'POST', '/api/chat/stream', body={
        'message': question, 'specialists': ['Synthetic'],
        'options': options})
    if s.status != 200:
        raise CheckFailed(f'POST /api/chat/stream answered {s.status}: '
                          f'{s.resp.read()[:300]!r}')
    s.read_until('the connected event', lambda x: x.events, 30)
    first = s.events[0]
    check(first.get('event') == 'connected' and
          first['json'].get('request_id'),
          f'a new run: connected, request {first["json"].get("request_id")}')
    return s, first['json']['request_id']


def partials(stream):
    return len(stream.of_type('partial_result'))
