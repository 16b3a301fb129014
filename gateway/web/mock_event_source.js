// MockEventSource: an EventSource that plays a recorded stream instead of
// connecting anywhere, for frontend unit tests with no server (issue 12,
// "Testing Patterns" of the design note, from real data instead of hand-made
// lists).
//
// A recording is a stream's text as `curl -N` saves it:
//
//   curl -N 'http://127.0.0.1:8080/api/chat/stream?message=...' > run.sse
//
// (`id:` / `event:` / `data:` lines, `: heartbeat` comments, blank lines
// between events; CRLF or LF). It plays with its original timing: every
// update carries `emitted_at_ns` (common/update_json.h), so an event waits
// for the time between its update and the previous timed one (events
// without a timestamp, such as `connected` and `done`, follow the previous
// one at once). A recording without timestamps (at least two are needed)
// plays one event every `intervalMs`. Either is divided by `speed`.
//
//   const Source = MockEventSource.from(text, {speed: 10});
//   const run = startRun('q', {EventSource: Source});   // agentstream.js
//   // or by hand: const es = new Source('/api/chat/stream?message=q');
//
// Like the gateway, it resumes: a URL with `after=N` (or `last_event_id=
// <rid>:N`) plays a `connected` {status: "resumed", after_seq: N} and then
// only what follows seq N; when nothing does, it fails at once (the gateway
// answers 204). At the end of the recording, and at a cut (`cuts`: the i-th
// instance of a class made by from() stops after cuts[i] events, to test
// reconnects), it fires `error` without data and turns CLOSED; it never
// reconnects by itself. Heartbeat comments are not delivered (EventSource
// hides them).

import {parseSse} from './sse_parser.js';
import {parseEventId} from './stream_decode.js';

function timestampMs(data) {
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch (e) {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object') return null;
  // A batch is sent with its last update.
  const update = Array.isArray(parsed.updates) && parsed.updates.length > 0 ?
      parsed.updates[parsed.updates.length - 1] :
      parsed;
  const ns = update && update.emitted_at_ns;
  return typeof ns === 'number' && Number.isFinite(ns) && ns > 0 ? ns / 1e6 : null;
}

/**
 * A recording's events: {events: [{type, data, id, seq, atMs}], requestId,
 * timed}. `id` is the event block's own id (null without one), `seq` its
 * seq, `atMs` its update's emission time (null when it has none).
 */
export function parseRecording(text) {
  const events = [];
  let requestId = null;
  for (const item of parseSse(String(text))) {
    if (item.kind !== 'event') continue;
    const id = item.id === null ? null : parseEventId(item.id);
    if (id && requestId === null) requestId = id.requestId;
    events.push({
      type: item.type,
      data: item.data,
      id: item.id,
      seq: id ? id.seq : null,
      atMs: timestampMs(item.data),
    });
  }
  const timed = events.filter((e) => e.atMs !== null).length >= 2;
  return {events, requestId, timed};
}

// The resume point a URL names: after=N, or last_event_id=<rid>:N.
function resumePoint(url) {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const params = new URLSearchParams(query);
  const after = params.get('after');
  if (after !== null && /^[0-9]+$/.test(after)) return Number(after);
  const id = parseEventId(params.get('last_event_id'));
  return id ? id.seq : 0;
}

const DEFAULTS = {
  recording: '',
  speed: 1,
  intervalMs: 100,
  timers: null,
  cuts: []
};

export class MockEventSource {
  /**
   * `init` (besides EventSource's withCredentials): recording (text),
   * speed, intervalMs, timers ({setTimeout, clearTimeout}), cut (stop after
   * this many events). A class made by from() supplies them.
   */
  constructor(url, init = {}) {
    const ctor = this.constructor;
    const config = {...DEFAULTS, ...(ctor.defaults || {}), ...init};
    this.instanceIndex = ctor.instances === undefined ? 0 : ctor.instances;
    ctor.instances = this.instanceIndex + 1;
    if (ctor.opened) ctor.opened.push(this);
    this.url = String(url);
    this.withCredentials = init.withCredentials === true;
    this.readyState = MockEventSource.CONNECTING;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.listeners = new Map();
    this.timers = config.timers || {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
    };
    this.speed = config.speed > 0 ? config.speed : 1;
    this.intervalMs = config.intervalMs;
    const cut = init.cut !== undefined ? init.cut : (config.cuts || [])[this.instanceIndex];
    this.cut = Number.isInteger(cut) && cut >= 0 ? cut : null;
    this.timer = null;
    this.played = 0;
    this.lastEventId = '';
    this.plan = this.makePlan(parseRecording(config.recording), resumePoint(this.url));
    this.next = 0;
    this.timer = this.timers.setTimeout(() => this.start(), 0);
  }

  /** A MockEventSource class that plays `recording` with `options`. */
  static from(recording, options = {}) {
    class Recorded extends this {}
    Recorded.defaults = {...options, recording};
    Recorded.instances = 0;
    // Every instance, in creation order (the URLs a client opened).
    Recorded.opened = [];
    return Recorded;
  }

  // [{event, delayMs}] to play, or null: nothing after the resume point.
  makePlan({events, requestId, timed}, after) {
    let list = events;
    if (after > 0) {
      const first = events.findIndex((e) => e.seq !== null && e.seq > after);
      if (first < 0) return null;
      const rid = requestId || 'req_mock';
      const connected = {
        type: 'connected',
        data: JSON.stringify(
            {type: 'connected', status: 'resumed', request_id: rid, after_seq: after}),
        id: `${rid}:${after}`,
        seq: after,
        atMs: null,
      };
      list = [connected, ...events.slice(first)];
    }
    let lastAt = null;
    return list.map((event) => {
      let delayMs = this.intervalMs;
      if (timed) {
        delayMs = 0;
        if (event.atMs !== null) {
          // Whole ms: nanosecond clocks as doubles are not exact below.
          if (lastAt !== null) delayMs = Math.max(0, Math.round(event.atMs - lastAt));
          lastAt = event.atMs;
        }
      }
      return {event, delayMs: delayMs / this.speed};
    });
  }

  start() {
    this.timer = null;
    if (this.readyState === MockEventSource.CLOSED) return;
    if (this.plan === null) {
      this.fail();
      return;
    }
    this.readyState = MockEventSource.OPEN;
    this.fire({type: 'open'});
    this.schedule();
  }

  schedule() {
    if (this.readyState !== MockEventSource.OPEN) return;
    if (this.next >= this.plan.length || (this.cut !== null && this.played >= this.cut)) {
      this.fail();
      return;
    }
    const {delayMs} = this.plan[this.next];
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (this.readyState !== MockEventSource.OPEN) return;
      const {event} = this.plan[this.next];
      this.next += 1;
      this.played += 1;
      if (event.id !== null) this.lastEventId = event.id;
      this.fire({type: event.type, data: event.data, lastEventId: this.lastEventId, origin: ''});
      this.schedule();
    }, delayMs);
  }

  // The connection is gone (the end, a cut, nothing to resume): `error`
  // without data, then CLOSED.
  fail() {
    this.readyState = MockEventSource.CLOSED;
    this.fire({type: 'error'});
  }

  addEventListener(type, fn) {
    if (typeof fn !== 'function') return;
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
  }

  removeEventListener(type, fn) {
    if (this.listeners.has(type)) this.listeners.get(type).delete(fn);
  }

  dispatchEvent(event) {
    this.fire(event);
    return true;
  }

  fire(init) {
    const event = {...init, target: this, currentTarget: this};
    const prop = {open: this.onopen, message: this.onmessage, error: this.onerror}[event.type];
    if (typeof prop === 'function') prop.call(this, event);
    for (const fn of [...(this.listeners.get(event.type) || [])]) fn.call(this, event);
  }

  close() {
    this.readyState = MockEventSource.CLOSED;
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

MockEventSource.CONNECTING = 0;
MockEventSource.OPEN = 1;
MockEventSource.CLOSED = 2;
