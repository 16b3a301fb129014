"""A small TCP proxy on loopback that a test can break on purpose, between
the browser and the gateway (client_lib_e2e.py).

  proxy = CutProxy(upstream_port)        # listens on 127.0.0.1:proxy.port
  proxy.cut()     # every open stream: the next chunk from the gateway is
                  # forwarded only in part (a random prefix), then both sides
                  # are closed: a stream cut at a random byte, mid-event
  proxy.freeze()  # every open stream stops forwarding in both directions
                  # and stays open: a half-open connection behind a proxy

A stream is a connection whose last request is one of the gateway's stream
endpoints (STREAM_REQUEST); idle keep-alive connections are left alone, so
that the browser's reconnect never lands on a connection broken here.
  proxy.close()   # closes everything it holds

Connections opened after a cut or a freeze are forwarded normally. Plain
threads, stdlib only; every socket is closed by close().
"""

import random
import re
import socket
import threading

CHUNK = 65536
STREAM_REQUEST = re.compile(rb'^(GET|POST) /api/(chat/stream|runs/[^/ ]+/stream)')
# A cut waits this long for the next chunk to cut inside; a connection with
# nothing to forward (an idle keep-alive) is then closed as it is.
CUT_WAIT_S = 2.0


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client, upstream, number):
        self.client = client
        self.upstream = upstream
        self.number = number
        self.last_request = b''  # The request line of the last request.
        self.cut_pending = False
        self.cut_record = None
        self.frozen = False
        self.closed = False
        self.lock = threading.Lock()
        self.bytes_down = 0

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class CutProxy:
    def __init__(self, upstream_port, host='127.0.0.1', seed=None):
        self.upstream = (host, upstream_port)
        self.random = random.Random(seed)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f'http://{host}:{self.port}/'
        self.lock = threading.Lock()
        self.pairs = []
        # Per cut: [(connection, bytes of the cut chunk forwarded, its size)].
        self.cuts = []
        self.stopping = False
        self.frozen_event = threading.Event()  # set by close(): frozen pumps end
        threading.Thread(target=self._accept, daemon=True).start()

    # ------------------------------------------------------------ controls

    def open_pairs(self):
        with self.lock:
            return [p for p in self.pairs if not p.closed]

    def open_streams(self):
        return [p for p in self.open_pairs()
                if STREAM_REQUEST.match(p.last_request)]

    def cut(self):
        """Cuts every open stream inside its next chunk from upstream."""
        record = []
        self.cuts.append(record)
        pairs = self.open_streams()
        for p in pairs:
            p.cut_record = record
            p.cut_pending = True
        for p in pairs:  # Nothing came to cut inside: close as it is.
            timer = threading.Timer(CUT_WAIT_S, self._cut_idle, (p, record))
            timer.daemon = True
            timer.start()
        return len(pairs)

    def freeze(self):
        """Stops forwarding on every open stream; closes nothing."""
        pairs = self.open_streams()
        for p in pairs:
            p.frozen = True
        return [p.number for p in pairs]

    def frozen_open(self):
        """Numbers of the frozen connections still open (never closed here)."""
        return [p.number for p in self.open_pairs() if p.frozen]

    def close(self):
        self.stopping = True
        self.frozen_event.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            pairs = list(self.pairs)
        for p in pairs:
            p.close()

    # ------------------------------------------------------------ internals

    def _cut_idle(self, pair, record):
        if pair.cut_pending and not pair.closed:
            record.append((pair.number, 0, 0))
            pair.close()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                pair = _Pair(client, upstream, len(self.pairs) + 1)
                self.pairs.append(pair)
            threading.Thread(target=self._pump_up, args=(pair,),
                             daemon=True).start()
            threading.Thread(target=self._pump_down, args=(pair,),
                             daemon=True).start()

    def _hold(self, pair):
        """A frozen pair forwards nothing more and closes nothing."""
        self.frozen_event.wait()
        pair.close()

    def _pump_up(self, pair):
        """Browser -> gateway."""
        try:
            while True:
                data = pair.client.recv(CHUNK)
                if pair.frozen:
                    return self._hold(pair)
                if not data:
                    break
                if re.match(rb'^[A-Z]+ /', data):
                    pair.last_request = data.split(b'\r\n', 1)[0][:300]
                pair.upstream.sendall(data)
        except OSError:
            pass
        if not pair.frozen:
            pair.close()
        return None

    def _pump_down(self, pair):
        """Gateway -> browser: where cuts happen."""
        try:
            while True:
                data = pair.upstream.recv(CHUNK)
                if pair.frozen:
                    return self._hold(pair)
                if not data:
                    break
                if pair.cut_pending:
                    keep = self.random.randint(0, len(data) - 1)
                    pair.client.sendall(data[:keep])
                    pair.cut_record.append((pair.number, keep, len(data)))
                    break
                pair.client.sendall(data)
                pair.bytes_down += len(data)
        except OSError:
            pass
        if not pair.frozen:
            pair.close()
        return None
