// How a run's stream is kept alive, as pure functions (no DOM, no
// EventSource, no clock): the client library (agentstream.js) asks them what
// to do and does it, the web client (app.js) takes its notice line from
// streamNotice(); Node tests them as they are
// (tests/e2e/web/session_test.mjs).
//
// The gateway's side (issue 4): every update carries `id: <rid>:<seq>`, and
// the gateway resumes a run after that seq, never starting it again. The
// library never leaves reconnecting to EventSource: when a connection ends
// without `done` (dropped, an `error` event with code `slow_consumer` or a
// retryable `unavailable`, a non-200 answer such as 503 while the
// orchestrator is away, a silent connection) it opens
// `GET /api/runs/{rid}/stream?after=<last seq>` itself after a backoff; the
// rid comes from the `connected` event (EventSource cannot read response
// headers). docs/CLIENT.md ("The rules") has the whole policy.

/** Backoff of the library's reconnects (its `retry` option replaces any part). */
export const RETRY_POLICY = Object.freeze({
  initialMs: 1000,  // The first retry waits about this long,
  maxMs: 8000,      // doubling up to this,
  maxAttempts: 6,   // and the client gives up after this many in a row.
  jitter: 0.2,      // +-20 %, so that many clients do not retry at once.
});

/** The URL that starts a run: `GET api/chat/stream?message=...`. */
export function chatUrl(question, specialists = []) {
  const params = new URLSearchParams({message: question});
  if (specialists.length > 0) params.set('specialists', specialists.join(','));
  return `api/chat/stream?${params}`;
}

/** The URL that resumes run `requestId` after `lastSeq` (0: from the start). */
export function resumeUrl(requestId, lastSeq) {
  const after = Number.isInteger(lastSeq) && lastSeq > 0 ? lastSeq : 0;
  return `api/runs/${encodeURIComponent(requestId)}/stream?after=${after}`;
}

/** The URL that cancels run `requestId` (method DELETE). */
export function cancelUrl(requestId) {
  return `api/runs/${encodeURIComponent(requestId)}`;
}

/**
 * How long to wait before reconnect attempt `attempt` (1, 2, ...), or null
 * once `policy.maxAttempts` are used up. `random` returns a number in [0, 1).
 */
export function retryDelayMs(attempt, policy = RETRY_POLICY, random = Math.random) {
  if (!Number.isInteger(attempt) || attempt < 1 || attempt > policy.maxAttempts) return null;
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** (attempt - 1));
  const factor = 1 + policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(policy.maxMs, Math.round(base * factor)));
}

/**
 * True for a gateway `error` event after which the stream ends without
 * `done` and the client reconnects: `slow_consumer`, or `unavailable`
 * marked retryable. A specialist's error never is.
 */
export function isReconnectError(data) {
  if (data === null || typeof data !== 'object' || data.type !== 'error') return false;
  if (typeof data.specialist === 'string' && data.specialist !== '') return false;
  return data.code === 'slow_consumer' || (data.code === 'unavailable' && data.retryable === true);
}

/**
 * What to do when a connection has ended without `done`, given the
 * reducer's state:
 *  - 'ignore':   the run is over for this page (done received, or stopped);
 *  - 'finished': the final `complete` was received and only `done` is
 *                missing (a resume after the final event is answered 204);
 *  - 'retry':    the run is known: reconnect with resumeUrl() after a backoff;
 *  - 'fail':     no run id yet (the request itself was refused): starting
 *                again would start a second run, so report the failure.
 */
export function onSourceClosed(state) {
  if (state.done || state.stopped) return 'ignore';
  if (state.finalResult !== null && state.finalResult !== undefined) return 'finished';
  if (state.requestId) return 'retry';
  return 'fail';
}

/**
 * What the answer to `DELETE api/runs/{rid}` means: {outcome, note} with
 * outcome one of accepted | ended | unknown | unauthorized (401) | failed.
 * `status` is the HTTP
 * status, or null when the gateway could not be reached.
 */
export function cancelOutcome(status) {
  if (status === 200 || status === 202) {
    return {outcome: 'accepted', note: 'Cancelling: the run’s last updates follow.'};
  }
  if (status === 409) return {outcome: 'ended', note: 'The run had already ended.'};
  if (status === 404) {
    return {
      outcome: 'unknown',
      note: 'The gateway no longer knows this run; stopped following it.'
    };
  }
  if (status === 401) {
    return {
      outcome: 'unauthorized',
      note: 'The gateway refused the request: no access token, or a refused one.',
    };
  }
  if (status === 503) {
    return {
      outcome: 'failed',
      note: 'The orchestrator is unavailable, so the run could not be cancelled yet; try again.',
    };
  }
  if (status === null || status === undefined) {
    return {outcome: 'failed', note: 'Could not reach the gateway to cancel; try again.'};
  }
  return {outcome: 'failed', note: `Cancel failed (HTTP ${status}); try again.`};
}

/**
 * The line the page shows about the stream itself, or '' when there is
 * nothing to say: reconnecting (and why), a scheduled retry, a cancel on its
 * way.
 */
export function streamNotice(state) {
  if (state.done || state.stopped) return '';
  if (state.retry) {
    const seconds = Math.max(1, Math.round(state.retry.delayMs / 1000));
    return `Connection lost; reconnecting in ${seconds} s (attempt ${state.retry.attempt} of ${
        RETRY_POLICY.maxAttempts}). Nothing already received is lost.`;
  }
  if (state.connection === 'reconnecting') {
    const why = state.notice && state.notice.message ? `${state.notice.message} ` : '';
    return `${why}Reconnecting…`.trim();
  }
  if (state.cancel && (state.cancel.state === 'pending' || state.cancel.state === 'accepted')) {
    return 'Cancelling…';
  }
  if (state.cancel && state.cancel.note) return state.cancel.note;
  return '';
}
