// Unit tests of the web client's stream control (gateway/web/session.js) and
// of the reducer's part in streams that survive (resume, reconnect, gap,
// cancel), run with Node's built-in test runner.

import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {initialState, reduce} from '../../../gateway/web/reducer.js';
import {cancelOutcome, cancelUrl, chatUrl, isReconnectError, onSourceClosed, RETRY_POLICY, resumeUrl, retryDelayMs, streamNotice} from '../../../gateway/web/session.js';

const RID = 'req_7e2a11';
const QUESTION = 'Assess the risk of ACC-1042';

function fold(updates, state = initialState()) {
  return updates.reduce(reduce, state);
}

// A Synthetic-like run of n partial results, then complete; seq 1..n+4.
function run(n) {
  const out = [
    {type: 'status', status: 'analyzing', message: 'Reading'},
    {type: 'specialist_activated', specialist: 'Synthetic', task: 'load'},
  ];
  for (let i = 1; i <= n; i++) {
    out.push({type: 'progress', specialist: 'Synthetic', progress: Math.floor(i * 100 / n)});
    out.push({type: 'partial_result', specialist: 'Synthetic', result: {part: `p${i}`, i}});
  }
  out.push({type: 'specialist_complete', specialist: 'Synthetic', outcome: 'ok', duration_ms: 5});
  out.push({type: 'complete', outcome: 'ok', result: {answer: 'All done.'}});
  return out.map((u, k) => ({request_id: RID, seq: k + 1, ...u}));
}

const CONNECTED = {type: 'connected', status: 'connected', request_id: RID};
const DONE = {type: 'done', status: 'complete'};
const resumed = (after) => ({type: 'connected', status: 'resumed', request_id: RID, after_seq: after});

// The state without the parts that count connections or events (a resumed
// fold sees more `connected` events and replays).
function essence(s) {
  const {resumes, eventCount, log, ...rest} = s;
  return {...rest, logSeqs: log.filter((e) => e.seq !== null).map((e) => e.seq)};
}

describe('resume is idempotent by seq', () => {
  const RUN = run(20);
  const start = reduce(initialState(), {type: 'reset', question: QUESTION});
  const straight = fold([CONNECTED, ...RUN, DONE], start);

  test('an update at or below the last applied seq is ignored', () => {
    const s = fold([CONNECTED, ...RUN.slice(0, 10)], start);
    assert.equal(s.lastSeq, 10);
    for (const u of RUN.slice(0, 10)) assert.equal(reduce(s, u), s, `seq ${u.seq}`);
    // Even if a replayed update were different, the applied one stands.
    assert.equal(reduce(s, {...RUN[9], result: {part: 'changed'}}), s);
  });

  test('a resumed connected keeps the state and counts the resume', () => {
    const s = fold([CONNECTED, ...RUN.slice(0, 10)], start);
    const r = reduce({...s, connection: 'reconnecting'}, resumed(10));
    assert.equal(r.connection, 'open');
    assert.equal(r.resumes, 1);
    assert.equal(r.lastSeq, 10);
    assert.equal(r.specialists, s.specialists);
    assert.equal(r.results, s.results);
    assert.deepEqual(r.log.slice(0, -1), s.log);  // Plus the connected event.
    assert.equal(r.log.at(-1).type, 'connected');
    assert.equal(r.question, QUESTION);
    assert.equal(r.requestId, RID);
  });

  test('resumes at any points, with overlapping replays, give the straight result', () => {
    // Cut after k updates; the resume replays from an earlier point (a
    // gateway that took ?after over Last-Event-ID) or from exactly k.
    const cases = [[3, 0], [10, 10], [10, 4], [25, 25], [40, 1]];
    let events = [CONNECTED];
    let at = 0;
    for (const [cut, from] of cases) {
      events = events.concat(RUN.slice(at, cut), [resumed(from)], RUN.slice(from, cut));
      at = cut;
    }
    events = events.concat(RUN.slice(at), [DONE]);
    const s = fold(events, start);
    assert.deepEqual(essence(s), essence(straight));
    assert.equal(s.resumes, cases.length);
    assert.equal(s.specialists.Synthetic.partials.length, 20);
    assert.deepEqual(s.log.filter((e) => e.type === 'partial_result').map((e) => e.data.result.i),
                     Array.from({length: 20}, (_, i) => i + 1));
  });

  test('a specialist error replayed after a resume is shown once', () => {
    const err = {
      request_id: RID, seq: 3, type: 'error', specialist: 'Synthetic', code: 'internal',
      message: 'synthetic failure', retryable: false,
    };
    const events = [CONNECTED, RUN[0], RUN[1], err, {...err}, resumed(2), RUN[1], err];
    const s = fold(events, start);
    assert.equal(s.errors.length, 1);
    assert.equal(s.specialists.Synthetic.errors.length, 1);
  });
});

describe('errors the stream survives', () => {
  const base = fold([{type: 'reset', question: QUESTION}, CONNECTED, ...run(5).slice(0, 6)]);
  const SLOW = {
    type: 'error', request_id: RID, code: 'slow_consumer', retryable: true, source: 'gateway',
    message: 'This client fell behind; reconnect with Last-Event-ID to resume.',
  };
  const LOST = {
    type: 'error', request_id: RID, code: 'unavailable', retryable: true, source: 'gateway',
    message: 'The orchestrator was lost; reconnect.',
  };

  test('isReconnectError: slow_consumer, retryable unavailable, never a specialist\'s', () => {
    assert.equal(isReconnectError(SLOW), true);
    assert.equal(isReconnectError(LOST), true);
    assert.equal(isReconnectError({...LOST, retryable: false}), false);
    assert.equal(isReconnectError({...LOST, specialist: 'RiskAnalyst'}), false);
    assert.equal(isReconnectError({...SLOW, type: 'timeout'}), false);
    assert.equal(isReconnectError({type: 'error', code: 'gap'}), false);
    assert.equal(isReconnectError(null), false);
  });

  for (const [name, err] of [['slow_consumer', SLOW], ['unavailable', LOST]]) {
    test(`${name}: reconnecting, not a failure; the resume carries on`, () => {
      const s = reduce(base, err);
      assert.equal(s.connection, 'reconnecting');
      assert.equal(s.status, base.status);
      assert.deepEqual(s.errors, []);
      assert.equal(s.done, null);
      assert.deepEqual(s.notice, {code: name, message: err.message});
      assert.match(streamNotice(s), /Reconnecting…$/);
      assert.ok(streamNotice(s).startsWith(err.message));
      // EventSource reconnects by itself; the replay changes nothing.
      const r = fold([{type: 'transport_error', fatal: false}, resumed(6), ...run(5).slice(2)], s);
      assert.equal(r.connection, 'open');
      assert.equal(r.notice, null);
      assert.equal(streamNotice(r), '');
      assert.equal(r.status, 'complete');
      assert.equal(r.specialists.Synthetic.partials.length, 5);
      // A second cut-off later is handled the same way (not taken for a repeat).
      assert.equal(reduce(r, err).connection, 'reconnecting');
    });
  }

  test('a gap fails the run, says what happened and keeps the question to ask again', () => {
    const GAP = {
      type: 'error', request_id: RID, code: 'gap', retryable: false, source: 'gateway',
      message: 'The run\'s log no longer holds the updates after seq 6; start the question again.',
    };
    const s = fold([resumed(6), GAP, {type: 'done', status: 'failed'}], base);
    assert.deepEqual(s.gap, {message: GAP.message});
    assert.equal(s.status, 'failed');
    assert.equal(s.connection, 'closed');
    assert.equal(s.question, QUESTION);
    assert.equal(s.errors.length, 1);
    assert.equal(s.errors[0].code, 'gap');
    assert.equal(onSourceClosed(s), 'ignore');
    assert.equal(streamNotice(s), '');
  });
});

describe('when EventSource gives up', () => {
  const started = reduce(initialState(), {type: 'reset', question: QUESTION});

  test('before any connected: fail (retrying would start a second run)', () => {
    assert.equal(onSourceClosed(started), 'fail');
  });

  test('mid-run: retry on the run\'s own stream after the last seq', () => {
    const s = fold([CONNECTED, ...run(5).slice(0, 7)], started);
    assert.equal(onSourceClosed(s), 'retry');
    assert.equal(resumeUrl(s.requestId, s.lastSeq), `api/runs/${RID}/stream?after=7`);
    const r = reduce(s, {type: 'retry_scheduled', attempt: 2, delayMs: 2100});
    assert.equal(r.connection, 'reconnecting');
    assert.deepEqual(r.retry, {attempt: 2, delayMs: 2100});
    assert.equal(
        streamNotice(r),
        `Connection lost; reconnecting in 2 s (attempt 2 of ${
            RETRY_POLICY.maxAttempts}). Nothing already received is lost.`);
    // The new stream's connected clears the retry.
    const back = reduce(r, resumed(7));
    assert.equal(back.retry, null);
    assert.equal(back.connection, 'open');
  });

  test('after complete (the resume was answered 204): finished, not failed', () => {
    const s = fold([CONNECTED, ...run(3)], started);
    assert.equal(onSourceClosed(s), 'finished');
    const r = reduce(s, {type: 'transport_error', fatal: true, message: ''});
    assert.equal(r.status, 'complete');
    assert.equal(r.connection, 'closed');
    assert.deepEqual(r.done, {status: 'complete'});
    assert.deepEqual(r.errors, []);
  });

  test('after done or after the page stopped following: ignore', () => {
    assert.equal(onSourceClosed(fold([CONNECTED, ...run(2), DONE], started)), 'ignore');
    assert.equal(onSourceClosed(fold([CONNECTED, {type: 'stopped', note: 'x'}], started)), 'ignore');
  });

  test('retries exhausted: a fatal transport error fails the run with the message', () => {
    const s = fold([CONNECTED, ...run(5).slice(0, 4), {type: 'retry_scheduled', attempt: 6, delayMs: 8000}],
                   started);
    const r = reduce(s, {type: 'transport_error', fatal: true, message: 'gave up'});
    assert.equal(r.status, 'failed');
    assert.equal(r.connection, 'error');
    assert.equal(r.retry, null);
    assert.equal(r.errors.at(-1).message, 'gave up');
  });

  test('retry_scheduled after done is ignored', () => {
    const s = fold([CONNECTED, ...run(1), DONE], started);
    assert.equal(reduce(s, {type: 'retry_scheduled', attempt: 1, delayMs: 1000}), s);
  });
});

describe('retryDelayMs', () => {
  const mid = () => 0.5;  // No jitter.

  test('doubles from the initial delay up to the maximum, then gives up', () => {
    const delays = [];
    for (let a = 1; a <= RETRY_POLICY.maxAttempts + 1; a++) delays.push(retryDelayMs(a, RETRY_POLICY, mid));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000, 8000, null]);
  });

  test('jitter stays within +-20 % and never above the maximum', () => {
    assert.equal(retryDelayMs(1, RETRY_POLICY, () => 0), 800);
    assert.equal(retryDelayMs(1, RETRY_POLICY, () => 0.999999), 1200);
    assert.equal(retryDelayMs(5, RETRY_POLICY, () => 0.999999), RETRY_POLICY.maxMs);
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(3, RETRY_POLICY);
      assert.ok(d >= 3200 && d <= 4800, String(d));
    }
  });

  test('bad attempts give null', () => {
    for (const a of [0, -1, 1.5, NaN, '1']) assert.equal(retryDelayMs(a), null, String(a));
  });

  test('honours another policy', () => {
    const p = {initialMs: 100, maxMs: 250, maxAttempts: 2, jitter: 0};
    assert.deepEqual([1, 2, 3].map((a) => retryDelayMs(a, p)), [100, 200, null]);
  });
});

describe('URLs', () => {
  test('chat, resume and cancel URLs', () => {
    assert.equal(chatUrl('a b&c'), 'api/chat/stream?message=a+b%26c');
    assert.equal(chatUrl('q', ['RiskAnalyst', 'Synthetic']),
                 'api/chat/stream?message=q&specialists=RiskAnalyst%2CSynthetic');
    assert.equal(resumeUrl('req/1', 42), 'api/runs/req%2F1/stream?after=42');
    assert.equal(resumeUrl(RID, 0), `api/runs/${RID}/stream?after=0`);
    assert.equal(resumeUrl(RID, null), `api/runs/${RID}/stream?after=0`);
    assert.equal(cancelUrl('req 1'), 'api/runs/req%201');
  });
});

describe('cancel', () => {
  const live = fold([{type: 'reset', question: QUESTION}, CONNECTED, ...run(5).slice(0, 5)]);

  test('cancelOutcome maps the DELETE answer', () => {
    assert.equal(cancelOutcome(202).outcome, 'accepted');
    assert.equal(cancelOutcome(200).outcome, 'accepted');
    assert.equal(cancelOutcome(409).outcome, 'ended');
    assert.equal(cancelOutcome(404).outcome, 'unknown');
    assert.equal(cancelOutcome(503).outcome, 'failed');
    assert.match(cancelOutcome(503).note, /try again/);
    assert.equal(cancelOutcome(null).outcome, 'failed');
    assert.match(cancelOutcome(500).note, /HTTP 500/);
  });

  test('accepted: cancelling until the server\'s cancelled ending arrives', () => {
    let s = reduce(live, {type: 'cancel_requested'});
    assert.deepEqual(s.cancel, {state: 'pending', note: ''});
    assert.equal(streamNotice(s), 'Cancelling…');
    s = reduce(s, {type: 'cancel_result', ...cancelOutcome(202)});
    assert.equal(s.cancel.state, 'accepted');
    assert.equal(s.status, 'analyzing');  // Nothing decided by the client.
    s = fold([
      {request_id: RID, seq: 6, type: 'specialist_complete', specialist: 'Synthetic', outcome: 'cancelled'},
      {request_id: RID, seq: 7, type: 'complete', outcome: 'cancelled', result: {}},
      {type: 'done', status: 'cancelled'},
    ], s);
    assert.equal(s.status, 'cancelled');
    assert.equal(s.outcome, 'cancelled');
    assert.equal(s.specialists.Synthetic.outcome, 'cancelled');
    assert.equal(s.stopped, null);
    assert.equal(streamNotice(s), '');
  });

  test('already ended or failed: the note is shown and the run goes on', () => {
    const ended = fold([{type: 'cancel_requested'}, {type: 'cancel_result', ...cancelOutcome(409)}], live);
    assert.equal(ended.cancel.state, 'ended');
    assert.equal(streamNotice(ended), 'The run had already ended.');
    const failed = fold([{type: 'cancel_requested'}, {type: 'cancel_result', ...cancelOutcome(503)}], live);
    assert.equal(failed.cancel.state, 'failed');
    assert.equal(failed.connection, 'open');
    assert.equal(failed.status, 'analyzing');
  });

  test('a cancel result without a request, or a request after done, is ignored', () => {
    assert.equal(reduce(live, {type: 'cancel_result', outcome: 'accepted'}), live);
    const done = fold([...run(5).slice(5), DONE], live);
    assert.equal(reduce(done, {type: 'cancel_requested'}), done);
  });

  test('reset forgets the cancel, the gap and the resumes', () => {
    const s = fold([{type: 'cancel_requested'}, resumed(5), {type: 'error', code: 'gap', message: 'm'}], live);
    const fresh = reduce(s, {type: 'reset', question: 'again'});
    assert.equal(fresh.cancel, null);
    assert.equal(fresh.gap, null);
    assert.equal(fresh.resumes, 0);
    assert.equal(fresh.lastSeq, 0);
  });
});
