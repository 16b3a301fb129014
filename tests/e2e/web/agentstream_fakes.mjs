// Test doubles for agentstream.js's tests (not a test file itself): a virtual
// clock, a seeded random source, a gateway run rendered as SSE text the way
// docs/GATEWAY.md "The wire" describes it, and a fetch that serves it through
// real Response/ReadableStream objects (so the library's own fetch reader
// and SSE parser run as in a browser).

import assert from 'node:assert/strict';
import {gzipSync} from 'node:zlib';

/** Lets promises, stream reads and setImmediate callbacks run. */
export async function settle(rounds = 30) {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Waits (real time, bounded) until pred() holds; for inflates on zlib's threads. */
export async function waitFor(pred, what, deadlineMs = 5000) {
  const end = Date.now() + deadlineMs;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A virtual clock: {setTimeout, clearTimeout} for the library, moved by the test. */
export function fakeClock() {
  let now = 0;
  let nextId = 1;
  const timers = new Map();
  const clock = {
    get now() {
      return now;
    },
    get pending() {
      return timers.size;
    },
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, {at: now + Math.max(0, Number(ms) || 0), fn, id});
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    /** Runs every timer due within `ms`, settling in between. */
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        await settle();
        let first = null;
        for (const t of timers.values()) {
          if (t.at <= end &&
              (first === null || t.at < first.at || (t.at === first.at && t.id < first.id))) {
            first = t;
          }
        }
        if (first === null) break;
        timers.delete(first.id);
        now = first.at;
        first.fn();
      }
      now = end;
      await settle();
    },
    /**
     * Jumps from timer to timer until done() holds (at most `limit` timers).
     * `realMs`: also waits this long in real time before each jump (for work
     * on other threads, such as zlib's inflates).
     */
    async runUntil(done, {limit = 10000, realMs = 0} = {}) {
      for (let i = 0; i < limit; i++) {
        if (realMs > 0) await new Promise((resolve) => setTimeout(resolve, realMs));
        await settle();
        if (done()) return;
        let first = null;
        for (const t of timers.values()) {
          if (first === null || t.at < first.at || (t.at === first.at && t.id < first.id))
            first = t;
        }
        if (first === null) {
          if (realMs > 0) continue;  // Work on other threads may still come.
          break;
        }
        timers.delete(first.id);
        now = first.at;
        first.fn();
      }
      await settle();
      assert.ok(done(), 'the condition never held');
    },
  };
  clock.timers = {setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout};
  return clock;
}

/** A seeded random source in [0, 1) (mulberry32). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A run of `n` updates, seq 1..n, ending with complete (emitted 10 ms apart). */
export function makeRun(rid, n) {
  const updates = [];
  for (let seq = 1; seq <= n; seq++) {
    const base = {
      request_id: rid,
      seq,
      emitted_at_ns: 1_700_000_000_000_000_000 + seq * 10_000_000
    };
    if (seq === 1) {
      updates.push({type: 'status', ...base, status: 'analyzing', message: 'Reading'});
    } else if (seq === n) {
      updates.push({type: 'complete', ...base, result: {answer: 'All done.'}, outcome: 'ok'});
    } else if (seq % 7 === 0) {
      updates.push({
        type: 'error',
        ...base,
        specialist: 'Synthetic',
        code: 'internal',
        message: `e${seq}`,
        retryable: false,
      });
    } else if (seq % 5 === 0) {
      updates.push(
          {type: 'partial_result', ...base, specialist: 'Synthetic', result: {part: `p${seq}`}});
    } else {
      updates.push({
        type: 'progress',
        ...base,
        specialist: 'Synthetic',
        progress: Math.floor(seq * 100 / n),
        current_action: 'working',
      });
    }
  }
  return updates;
}

/** The gzip envelope of compress=1 for `update`. */
export function compressed(update) {
  return {
    type: update.type,
    seq: update.seq,
    compressed: true,
    encoding: 'gzip',
    data: gzipSync(Buffer.from(JSON.stringify(update))).toString('base64'),
  };
}

/**
 * The SSE text the gateway sends for `updates` after seq `after`:
 * `retry`, `connected`, every update (an error/timeout also as its own
 * named event without id), `batch` events where `batchEvery` > 1 (their id
 * is the last seq inside), a heartbeat comment now and then, `done` last.
 */
export function sseText(
    rid, updates, {after = 0, batchEvery = 1, heartbeats = true, eol = '\n'} = {}) {
  const lines = [];
  const event = (fields) => {
    for (const f of fields) lines.push(f);
    lines.push('');
  };
  lines.push('retry: 2000', '');
  const connected = after > 0 ?
      {type: 'connected', status: 'resumed', request_id: rid, after_seq: after} :
      {type: 'connected', status: 'connected', request_id: rid};
  event([`id: ${rid}:${after}`, 'event: connected', `data: ${JSON.stringify(connected)}`]);
  const rest = updates.filter((u) => u.seq > after);
  for (let i = 0; i < rest.length; i += batchEvery) {
    const group = rest.slice(i, i + batchEvery);
    const last = group[group.length - 1];
    if (group.length > 1) {
      event([
        `id: ${rid}:${last.seq}`,
        'event: batch',
        `data: ${JSON.stringify({type: 'batch', request_id: rid, updates: group})}`,
      ]);
    } else {
      event([`id: ${rid}:${last.seq}`, 'event: message', `data: ${JSON.stringify(last)}`]);
    }
    for (const u of group) {
      if (u.type === 'error' || u.type === 'timeout') {
        event([`event: ${u.type}`, `data: ${JSON.stringify(u)}`]);
      }
    }
    if (heartbeats && i % 3 === 0) lines.push(': heartbeat', '');
  }
  event([
    'event: done', `data: ${JSON.stringify({type: 'done', status: 'complete', request_id: rid})}`
  ]);
  return lines.join(eol) + eol;
}

/**
 * A response body the test feeds: push(text), end(), fail(). Aborting the
 * request's signal errors it, as a real fetch does.
 */
export function pushableResponse({status = 200, headers = {}, signal} = {}) {
  const enc = new TextEncoder();
  let controller;
  const body = new ReadableStream({
    start(c) {
      controller = c;
    },
  });
  if (signal) {
    signal.addEventListener('abort', () => {
      try {
        controller.error(new Error('aborted'));
      } catch (e) { /* already closed */
      }
    });
  }
  const response = new Response(body, {status, headers});
  return {
    response,
    push: (text) => controller.enqueue(enc.encode(text)),
    end: () => controller.close(),
    fail: () => controller.error(new Error('connection reset')),
  };
}

/** A response that sends `chunks` as they are read, then ends ('eof') or breaks ('error'). */
export function chunkedResponse(
    chunks, {status = 200, headers = {}, endWith = 'eof', signal} = {}) {
  const enc = new TextEncoder();
  let i = 0;
  let aborted = false;
  const body = new ReadableStream({
    start(c) {
      if (signal) {
        signal.addEventListener('abort', () => {
          aborted = true;
          try {
            c.error(new Error('aborted'));
          } catch (e) { /* already closed */
          }
        });
      }
    },
    pull(c) {
      if (aborted) return;
      if (i < chunks.length) {
        c.enqueue(enc.encode(chunks[i++]));
      } else if (endWith === 'eof') {
        c.close();
      } else if (endWith === 'error') {
        c.error(new Error('connection reset'));
      }
      // 'hang': never ends.
    },
  });
  return new Response(status === 204 ? null : body, {status, headers});
}

/** Cuts `text` into pieces at random points (some a single character). */
export function randomChunks(text, random, maxPiece = 40) {
  const out = [];
  let at = 0;
  while (at < text.length) {
    const size = 1 + Math.floor(random() * maxPiece);
    out.push(text.slice(at, at + size));
    at += size;
  }
  return out;
}

/** A fetch that records each call and answers with handler(call). */
export function recordingFetch(handler) {
  const calls = [];
  const fn = async (url, init = {}) => {
    const call = {
      url: String(url),
      method: init.method || 'GET',
      headers: {...(init.headers || {})},
      body: init.body === undefined ? null : init.body,
      signal: init.signal,
      index: calls.length,
    };
    calls.push(call);
    return handler(call);
  };
  fn.calls = calls;
  return fn;
}

/** The `after` query parameter of a URL (null without one). */
export function afterOf(url) {
  const q = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const v = new URLSearchParams(q).get('after');
  return v === null ? null : Number(v);
}

/** Watches what a consumer of `run` sees: {seen: [seq...], events: [type...]}. */
export function consumer(run) {
  const seen = [];
  const events = [];
  run.onUpdate((u) => {
    events.push(u.type);
    if (Number.isInteger(u.seq) && u.seq > 0) seen.push(u.seq);
  });
  return {seen, events};
}

export function range(from, to) {
  return Array.from({length: to - from + 1}, (_, i) => from + i);
}
