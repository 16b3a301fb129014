// agentstream.js: the client library of the agentstream gateway for
// frontends, an ES module with no build step (served at /agentstream.js; the
// types are in agentstream.d.ts, the guide in docs/CLIENT.md).
//
//   import {startRun, attach} from '/agentstream.js';
//   const run = startRun('Assess the risk of ACC-1042', {
//     onState: (state) => render(state),        // reducer.js's state
//     on: {partial_result: (u) => console.log(u.specialist, u.result)},
//   });
//   run.cancel();  // DELETE /api/runs/{id}
//
// What it guarantees (docs/GATEWAY.md "The wire" for the gateway's side):
//
//  - Exactly once, in order. Every update carries a seq; the library keeps
//    the highest seq it has delivered and drops any update at or below it, so
//    across any number of reconnects (each resumes after that seq) a consumer
//    sees each seq once, in increasing order. Events without a seq
//    (`connected`, `done`, the gateway's own errors) are delivered as they
//    come. The `error`/`timeout` copies under their own event names repeat a
//    seq and are dropped that way.
//  - Reconnects are the library's own: a connection that fails, ends without
//    `done`, or goes silent is closed and opened again on
//    `GET /api/runs/{id}/stream?after=<last seq>` (fetch also sends
//    `Last-Event-ID: <id>:<seq>`) after a backoff with jitter
//    (session.js's RETRY_POLICY unless `retry` says otherwise; the gateway's
//    `Retry-After` when longer), at most `retry.maxAttempts` times in a row; a
//    `connected` resets the count. EventSource is closed on its first error
//    and never reconnects by itself. Before the run's id is known (no
//    `connected` yet, and with EventSource no header) a failure is final:
//    trying again would start a second run.
//  - The heartbeat watchdog: no byte for 2.5 heartbeat intervals
//    (`heartbeatMs`, the gateway's --heartbeat-ms, default 15000) means a
//    dead connection (half-open TCP behind a proxy); it is closed and resumed
//    as above. The fetch transport sees every byte, heartbeat comments
//    included. EventSource hides comments, so on that transport the library
//    asks the gateway for `heartbeat=event` (heartbeats as `event:
//    heartbeat`, which EventSource does deliver) and counts every event;
//    `watchdog: false` turns it off (and stops asking).
//  - `batch` events are split into their updates, compressed updates
//    (`compress: true`) are inflated with DecompressionStream('gzip'), in
//    stream order (one event at a time), and `types` is applied on this side
//    too (besides the gateway's filter), so an older gateway that ignores it
//    still delivers only those types plus connected, done, error and timeout.
//
// Transports: GET through EventSource when one is available (the browser's,
// or an injected class such as MockEventSource), else through fetch; POST
// (`method: 'POST'`, or a question whose GET URL would exceed
// `maxGetUrlLength`) always through fetch, parsing the SSE of the body itself
// (sse_parser.js). `transport: 'fetch'` uses fetch for GET too (it sees
// heartbeat comments and response headers). Reconnects use the transport of
// the first connection. With the `token` option every request carries
// `Authorization: Bearer <token>` and streams go through fetch (EventSource
// cannot set headers); a 401 ends following at once, never retried
// (`failed` with `reason: 'unauthorized'`).

import {hasTokenOption, parseChallenge, resolveToken, unauthorizedMessage, withBearer} from './auth.js';
import {DEFAULT_OPTIONS, WATCHDOG_INTERVALS} from './options.js';
import {initialState, reduce} from './reducer.js';
import {cancelOutcome, isReconnectError, onSourceClosed, RETRY_POLICY, retryDelayMs} from './session.js';
import {inflateUpdate, needsInflate, parseEventId, seqOf, splitEvent} from './stream_decode.js';
import {ALWAYS_SENT_TYPES, checkTypes, deleteUrl, followUrl, postBody, postUrl, startUrl} from './stream_request.js';
import {openEventSource, openFetch} from './stream_transport.js';

export {HttpError, parseChallenge} from './auth.js';
export {MockEventSource, parseRecording} from './mock_event_source.js';
export {DEFAULT_HEARTBEAT_MS, DEFAULT_OPTIONS, WATCHDOG_INTERVALS} from './options.js';
export {initialState, reduce} from './reducer.js';
export {RETRY_POLICY} from './session.js';
export {parseSse, SseParser} from './sse_parser.js';
export {parseEventId} from './stream_decode.js';
export {ALWAYS_SENT_TYPES, fetchSpecialists, UPDATE_TYPES} from './stream_request.js';

/** A follower of one run: what startRun() and attach() return. */
export class AgentStream {
  constructor({question, runId, after}, options = {}) {
    const o = {...DEFAULT_OPTIONS, ...options};
    this.options = o;
    this.types = checkTypes(o.types);
    this.retryPolicy = {...RETRY_POLICY, ...(o.retry || {})};
    this.timers = o.timers || {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (id) => clearTimeout(id),
    };
    this.fetchFn = o.fetch || (typeof fetch === 'function' ? fetch.bind(globalThis) : null);
    this.EventSourceClass =
        o.EventSource || (typeof EventSource === 'function' ? EventSource : null);

    this.question = question === undefined ? null : String(question);
    this.requestId = runId === undefined ? null : String(runId);
    this.lastSeq = Number.isInteger(after) && after > 0 ? after : 0;
    this.state = reduce(initialState(), {type: 'reset', question: this.question || ''});
    if (this.requestId) this.state = {...this.state, requestId: this.requestId};
    this.status = 'connecting';
    this.attempts = 0;
    this.duplicates = 0;
    this.reconnects = 0;

    this.usePost = false;
    if (this.question !== null) {
      // The longest the GET could be: with heartbeat events asked for.
      const longest = startUrl(this.question, o, this.types, o.heartbeat || 'event');
      this.usePost =
          String(o.method).toUpperCase() === 'POST' || longest.length > o.maxGetUrlLength;
    }
    this.withToken = hasTokenOption(o.token);
    this.sentToken = false;  // Whether the last request carried a token.
    this.useEventSource = !this.usePost && !this.withToken && o.transport !== 'fetch' &&
        this.EventSourceClass !== null;
    if (o.transport === 'eventsource' && !this.useEventSource) {
      throw new TypeError(
          'transport "eventsource": no EventSource class (or a POST run, or a token)');
    }
    if (!this.useEventSource && !this.fetchFn) throw new TypeError('no fetch to stream with');
    // EventSource cannot see comments: the watchdog needs heartbeat events.
    this.heartbeat = o.heartbeat || (this.useEventSource && o.watchdog ? 'event' : null);

    this.conn = null;
    this.retryTimer = null;
    this.watchdogTimer = null;
    this.graceTimer = null;
    this.finishedFlag = false;
    this.queue = [];
    this.draining = false;
    this.handlers = new Map();
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });

    if (o.onUpdate) this.onUpdate(o.onUpdate);
    if (o.onState) this.onState(o.onState);
    if (o.onStatus) this.onStatus(o.onStatus);
    if (o.onError) this.onError(o.onError);
    for (const [type, fn] of Object.entries(o.on || {})) this.on(type, fn);

    // Connect on the next microtask, so handlers added right after
    // startRun() returns see the first status too.
    Promise.resolve().then(() => {
      if (this.finishedFlag) return;
      this.emit('*status', this.status, {attempt: 0});
      this.connect();
    });
  }

  // ---------------------------------------------------------------- handlers

  /** Calls fn(update) for each update of `type` ('heartbeat' too); returns an unsubscribe. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  /** fn(update) for every update delivered, in order. */
  onUpdate(fn) {
    return this.on('*update', fn);
  }

  /** fn(state, update) after the reducer folded each update or client event in. */
  onState(fn) {
    return this.on('*state', fn);
  }

  /** fn(status, detail): connecting | open | reconnecting | closed | failed. */
  onStatus(fn) {
    return this.on('*status', fn);
  }

  /** fn(error, detail): undecodable data, a handler that threw. */
  onError(fn) {
    return this.on('*error', fn);
  }

  // Calls the handlers under `key`: an update type, or one of the internal
  // '*update', '*state', '*status', '*error' (a prefix no update type has, so
  // a `status` or `error` update never reaches onStatus or onError).
  emit(key, ...args) {
    const set = this.handlers.get(key);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        if (key === '*error') {
          console.error('agentstream: an onError handler threw', e);
        } else {
          this.reportError(e, {where: `${key} handler`});
        }
      }
    }
  }

  reportError(error, detail) {
    const set = this.handlers.get('*error');
    if (!set || set.size === 0) {
      console.error('agentstream:', error, detail);
      return;
    }
    this.emit('*error', error, detail);
  }

  setStatus(status, detail = {}) {
    if (status === this.status && status !== 'reconnecting') return;
    this.status = status;
    this.emit('*status', status, detail);
  }

  // Folds a client event (reset, retry_scheduled, ...) into the state.
  dispatch(event) {
    this.state = reduce(this.state, event);
    this.emit('*state', this.state, event);
  }

  // ------------------------------------------------------------ connections

  connect() {
    if (this.finishedFlag) return;
    const callbacks = {};
    let conn = null;
    callbacks.onActivity = () => this.armWatchdog(conn);
    callbacks.onOpen = ({requestId}) => {
      if (conn !== this.conn) return;
      if (!this.requestId && requestId) this.requestId = requestId;
    };
    callbacks.onEvent = (event) => {
      if (conn === this.conn) this.enqueue(event);
    };
    callbacks.onEnd = (info) => this.connectionEnded(conn, info);

    const o = this.options;
    const headers = {Accept: 'text/event-stream'};
    let url = null;
    let init = {method: 'GET', headers};
    if (this.requestId !== null) {
      // The run is known: follow it after what was received.
      url = followUrl(this.requestId, this.lastSeq, o, this.types, this.heartbeat);
      if (this.lastSeq > 0) headers['Last-Event-ID'] = `${this.requestId}:${this.lastSeq}`;
    } else if (this.usePost) {
      url = postUrl(o);
      headers['Content-Type'] = 'application/json';
      init = {
        method: 'POST',
        headers,
        body: JSON.stringify(postBody(this.question, o, this.types, this.heartbeat)),
      };
    } else {
      url = startUrl(this.question, o, this.types, this.heartbeat);
    }
    conn = {close() {}};
    this.conn = conn;
    const open = (token) => {
      if (conn !== this.conn || this.finishedFlag) return;
      this.sentToken = token !== '';
      const opened = this.useEventSource ?
          openEventSource(this.EventSourceClass, url, callbacks) :
          openFetch(this.fetchFn, url, {...init, headers: withBearer(headers, token)}, callbacks);
      conn.close = opened.close;
    };
    if (this.withToken) {
      // The page's token function is asked before every connection.
      resolveToken(o.token).then(open, (e) => {
        if (conn === this.conn) this.fail(`No access token: ${e && e.message ? e.message : e}`);
      });
    } else {
      open('');
    }
    this.armWatchdog(conn);
  }

  armWatchdog(conn) {
    if (!this.options.watchdog || conn !== this.conn || this.finishedFlag) return;
    if (this.watchdogTimer !== null) this.timers.clearTimeout(this.watchdogTimer);
    const ms = this.options.heartbeatMs * WATCHDOG_INTERVALS;
    this.watchdogTimer = this.timers.setTimeout(() => {
      this.watchdogTimer = null;
      if (conn !== this.conn) return;
      conn.close();
      this.connectionEnded(conn, {reason: 'watchdog', status: null, retryAfterMs: null});
    }, ms);
  }

  clearTimer(name) {
    if (this[name] !== null) {
      this.timers.clearTimeout(this[name]);
      this[name] = null;
    }
  }

  connectionEnded(conn, info) {
    if (this.finishedFlag || conn !== this.conn) return;
    this.conn = null;
    this.clearTimer('watchdogTimer');
    if (!this.requestId && info.requestId) this.requestId = info.requestId;
    // Whatever was received is delivered first (inflates may be pending).
    this.enqueue({type: '*ended', info});
  }

  // Runs after every event received before the end was delivered.
  decideAfterEnd(info) {
    if (this.finishedFlag) return;
    if (info.reason === 'http' && info.status === 204) {
      // Nothing follows our last seq and the run is over (its `complete` was
      // received, or filtered out by `types`).
      this.fail(
          this.state.finalResult !== null ?
              '' :
              `The run had ended; nothing followed seq ${this.lastSeq}.`,
          'closed');
      return;
    }
    if (info.reason === 'http' && info.status === 401) {
      // Another try with the same token would be refused the same way.
      const challenge = parseChallenge(info.wwwAuthenticate);
      this.fail(unauthorizedMessage(this.sentToken, challenge), 'failed', {
        reason: 'unauthorized',
        httpStatus: 401,
        challenge,
        sentToken: this.sentToken,
      });
      return;
    }
    const retryable =
        info.reason !== 'http' || info.status === 408 || info.status === 429 || info.status >= 500;
    if (!retryable) {
      this.fail(`The gateway refused the request (HTTP ${info.status}).`);
      return;
    }
    const stateForDecision = {...this.state, requestId: this.requestId};
    switch (onSourceClosed(stateForDecision)) {
      case 'ignore':
        return;
      case 'finished':
        this.fail('', 'closed');  // The reducer ends quietly: `complete` arrived.
        return;
      case 'retry':
        this.scheduleRetry(info);
        return;
      default:
        this.fail(
            this.state.connection === 'connecting' ?
                'The gateway did not accept the request (it may be unreachable, overloaded or the input invalid).' :
                'The connection to the gateway was lost before the run was named.');
    }
  }

  scheduleRetry(info) {
    this.attempts += 1;
    let delayMs = retryDelayMs(this.attempts, this.retryPolicy, this.options.random);
    if (delayMs === null) {
      this.fail(`The connection to the gateway was lost and ${
          this.retryPolicy.maxAttempts} attempts to resume failed.`);
      return;
    }
    if (info.retryAfterMs) delayMs = Math.max(delayMs, info.retryAfterMs);
    this.dispatch({type: 'retry_scheduled', attempt: this.attempts, delayMs});
    this.setStatus('reconnecting', {
      attempt: this.attempts,
      delayMs,
      reason: info.reason,
      httpStatus: info.status === undefined ? null : info.status,
    });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.reconnects += 1;
      this.connect();
    }, delayMs);
  }

  // Ends following the run: `message` '' with status 'closed' is a quiet end;
  // `extra` goes into the status detail (`reason` also into the state's error).
  fail(message, status = 'failed', extra = {}) {
    if (this.finishedFlag) return;
    this.dispatch({type: 'transport_error', fatal: true, message, code: extra.reason});
    this.finish(status, {message, ...extra});
  }

  finish(status, detail = {}) {
    if (this.finishedFlag) return;
    this.finishedFlag = true;
    if (this.conn) this.conn.close();
    this.conn = null;
    this.queue = [];
    this.clearTimer('watchdogTimer');
    this.clearTimer('retryTimer');
    this.clearTimer('graceTimer');
    this.setStatus(status, detail);
    this.resolveFinished({status, state: this.state, detail});
  }

  // ----------------------------------------------------------------- events

  // Events are handled one at a time, in order; an inflate holds the line.
  enqueue(item) {
    this.queue.push(item);
    if (!this.draining) this.drain();
  }

  drain() {
    this.draining = true;
    while (this.queue.length > 0 && !this.finishedFlag) {
      const item = this.queue.shift();
      let pending;
      try {
        pending = item.type === '*ended' ? this.decideAfterEnd(item.info) : this.handleEvent(item);
      } catch (e) {
        this.reportError(e, {where: 'event', event: item});
      }
      if (pending && typeof pending.then === 'function') {
        pending.then(() => this.drain(), (e) => {
          this.reportError(e, {where: 'event', event: item});
          this.drain();
        });
        return;
      }
    }
    this.draining = false;
  }

  handleEvent(event) {
    if (event.type === 'heartbeat') {
      let data = null;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        data = {type: 'heartbeat'};
      }
      this.emit('heartbeat', data);
      return undefined;
    }
    let updates;
    try {
      updates = splitEvent(event.type, event.data);
    } catch (e) {
      this.reportError(e, {where: 'decode', event});
      this.advance(event.lastEventId);
      return undefined;
    }
    return this.deliverFrom(updates, 0, event.lastEventId);
  }

  deliverFrom(updates, start, lastEventId) {
    for (let i = start; i < updates.length && !this.finishedFlag; i++) {
      const u = updates[i];
      if (!this.wanted(u)) continue;
      if (needsInflate(u)) {
        return inflateUpdate(u)
            .then(
                (full) => this.deliver(full),
                (e) => {
                  this.reportError(e, {where: 'inflate', update: u});
                  this.markSeen(seqOf(u));
                })
            .then(() => this.deliverFrom(updates, i + 1, lastEventId));
      }
      this.deliver(u);
    }
    this.advance(lastEventId);
    return undefined;
  }

  // Decided on the envelope alone: a repeat, or a type not asked for.
  wanted(update) {
    const seq = seqOf(update);
    if (seq !== null && seq <= this.lastSeq) {
      this.duplicates += 1;
      return false;
    }
    if (this.types && typeof update.type === 'string' && !this.types.includes(update.type) &&
        !ALWAYS_SENT_TYPES.includes(update.type)) {
      this.markSeen(seq);
      return false;
    }
    return true;
  }

  markSeen(seq) {
    if (seq !== null && seq > this.lastSeq) this.lastSeq = seq;
  }

  // The event's id (`<rid>:<seq>`; a batch's is its last seq) is a resume point.
  advance(lastEventId) {
    const id = parseEventId(lastEventId);
    if (id && (this.requestId === null || id.requestId === this.requestId)) this.markSeen(id.seq);
  }

  deliver(update) {
    if (this.finishedFlag) return;
    const seq = seqOf(update);
    if (seq !== null) {
      if (seq <= this.lastSeq) {
        this.duplicates += 1;
        return;
      }
      this.lastSeq = seq;
    }
    if (update.type === 'connected') {
      if (typeof update.request_id === 'string' && update.request_id) {
        this.requestId = update.request_id;
      }
      if (Number.isInteger(update.after_seq)) this.markSeen(update.after_seq);
      this.attempts = 0;
    }
    this.state = reduce(this.state, update);
    if (update.type === 'connected') this.setStatus('open', {resumed: update.status === 'resumed'});
    this.emit(update.type, update);
    this.emit('*update', update);
    this.emit('*state', this.state, update);
    if (update.type === 'done') {
      this.finish('closed', {done: update.status});
    } else if (isReconnectError(update)) {
      this.setStatus('reconnecting', {reason: update.code, attempt: this.attempts});
    }
  }

  // -------------------------------------------------------------- controls

  /** Stops following the run (the run itself goes on: cancel() ends it). */
  close(note = 'Stopped following the run.') {
    if (this.finishedFlag) return;
    this.dispatch({type: 'stopped', cancelled: false, note});
    this.finish('closed', {stopped: true});
  }

  /**
   * Cancels the run (DELETE /api/runs/{id}) and resolves to {outcome, note,
   * status}; outcome is session.js's cancelOutcome(): accepted | ended |
   * unknown | unauthorized | failed. After `accepted` the stream brings the cancelled
   * ending; if it does not within `cancelGraceMs`, following stops.
   */
  async cancel() {
    const requestId = this.requestId;
    if (!requestId) {
      return {
        outcome: 'failed',
        note: 'The run has no id yet; try again in a moment.',
        status: null
      };
    }
    if (!this.fetchFn) throw new TypeError('no fetch to cancel with');
    if (!this.finishedFlag) this.dispatch({type: 'cancel_requested'});
    const abort = new AbortController();
    const timer = this.timers.setTimeout(() => abort.abort(), this.options.cancelTimeoutMs);
    let status = null;
    let token = '';
    let challenge = null;
    try {
      token = await resolveToken(this.options.token);
      const response = await this.fetchFn(deleteUrl(requestId, this.options), {
        method: 'DELETE',
        headers: withBearer({}, token),
        signal: abort.signal,
      });
      status = response.status;
      if (status === 401) challenge = parseChallenge(response.headers.get('WWW-Authenticate'));
    } catch (e) {
      status = null;
    } finally {
      this.timers.clearTimeout(timer);
    }
    let {outcome, note} = cancelOutcome(status);
    if (challenge) note = unauthorizedMessage(token !== '', challenge);
    if (this.finishedFlag) return {outcome, note, status};
    this.dispatch({type: 'cancel_result', outcome, note});
    if (outcome === 'unknown') {
      this.dispatch({type: 'stopped', cancelled: false, note});
      this.finish('closed', {stopped: true});
    } else if (outcome === 'accepted' && this.graceTimer === null) {
      this.graceTimer = this.timers.setTimeout(() => {
        this.graceTimer = null;
        if (this.finishedFlag) return;
        this.dispatch({
          type: 'stopped',
          cancelled: true,
          note: 'Run cancelled; its final updates did not arrive in time.',
        });
        this.finish('closed', {stopped: true});
      }, this.options.cancelGraceMs);
    }
    return {outcome, note, status};
  }
}

/** Starts a run of `question` and follows it. */
export function startRun(question, options = {}) {
  if (typeof question !== 'string' || question.trim() === '') {
    throw new TypeError('startRun needs a non-empty question');
  }
  return new AgentStream({question}, options);
}

/** Follows run `runId` (from the start, or after seq `options.after`). */
export function attach(runId, options = {}) {
  if (typeof runId !== 'string' || runId === '') throw new TypeError('attach needs a run id');
  const {after, ...rest} = options;
  return new AgentStream({runId, after}, rest);
}
