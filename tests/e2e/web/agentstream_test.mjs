// Tests of the client library gateway/web/agentstream.js with Node's built-in
// runner: reconnects that resume and never repeat or lose a seq, backoff,
// jitter and the retry limit, the heartbeat watchdog, typed handlers, cancel
// and close. The gateway is faked by real Response/ReadableStream bodies
// (agentstream_fakes.mjs) or by MockEventSource; the clock is virtual. The
// wire (parsing, batches, gzip, URLs and bodies, MockEventSource, the types)
// is in agentstream_wire_test.mjs.

import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {attach, MockEventSource, RETRY_POLICY, startRun} from '../../../gateway/web/agentstream.js';
import {retryDelayMs} from '../../../gateway/web/session.js';

import {afterOf, chunkedResponse, compressed, consumer, fakeClock, makeRun, pushableResponse, randomChunks, range, recordingFetch, seededRandom, settle, sseText} from './agentstream_fakes.mjs';

const RID = 'req_5b1e0c';
const N = 60;

describe('reconnects: each seq once, in order', () => {
  // A gateway that cuts each response at a random byte `cuts` times (EOF or
  // a reset), then serves the rest; every request must resume exactly after
  // the last seq the consumer has seen.
  async function cutRun(seed, cuts, {batchEvery = 1, eol = '\n', compress = false} = {}) {
    const random = seededRandom(seed);
    const clock = fakeClock();
    let updates = makeRun(RID, N);
    if (compress) updates = updates.map((u) => (u.seq % 4 === 0 ? compressed(u) : u));
    let delivered = 0;
    const fetch = recordingFetch((call) => {
      const after = afterOf(call.url) || 0;
      if (call.index > 0) {
        assert.equal(after, delivered, 'a reconnect resumes after the last seq seen');
        assert.equal(call.headers['Last-Event-ID'], after > 0 ? `${RID}:${after}` : undefined);
        assert.match(call.url, new RegExp(`^api/runs/${RID}/stream\\?after=\\d+`));
      }
      let text = sseText(RID, updates, {after, batchEvery, eol});
      let endWith = 'eof';
      if (call.index < cuts) {
        // Past the connected event most of the time, so the run is named.
        const connectedEnd = text.indexOf('\n\n', text.indexOf('connected')) + 2;
        const at = connectedEnd + Math.floor(random() * (text.length - connectedEnd));
        text = text.slice(0, at);
        endWith = random() < 0.5 ? 'eof' : 'error';
      }
      return chunkedResponse(randomChunks(text, random), {
        endWith,
        signal: call.signal,
        headers: {'X-Request-Id': RID},
      });
    });
    const run = startRun('Assess ACC-1042', {
      transport: 'fetch',
      fetch,
      timers: clock.timers,
      random,
      retry: {maxAttempts: cuts + 2},
      watchdog: !compress,
    });
    const {seen, events} = consumer(run);
    run.onUpdate((u) => {
      if (Number.isInteger(u.seq)) delivered = u.seq;
    });
    let finished = null;
    run.finished.then((r) => {
      finished = r;
    });
    // Inflates run on zlib's threads: a little real time between steps.
    await clock.runUntil(() => finished !== null, {realMs: compress ? 2 : 0});
    return {seen, events, finished, fetch, run};
  }

  for (const [seed, cuts] of [[1, 3], [2, 3], [3, 5], [4, 10], [5, 1]]) {
    test(`seed ${seed}, ${cuts} cuts at random points: seq 1..${N} once each`, async () => {
      const {seen, events, finished, fetch, run} = await cutRun(seed, cuts);
      assert.deepEqual(seen, range(1, N));
      assert.equal(finished.status, 'closed');
      // A cut between `complete` and `done` ends quietly (onSourceClosed:
      // finished), as a resume then would be answered 204.
      assert.ok(['done', 'complete'].includes(events[events.length - 1]));
      assert.ok(fetch.calls.length <= cuts + 1);
      assert.equal(run.state.answer, 'All done.');
      assert.equal(run.state.status, 'complete');
    });
  }

  test('batched and CRLF streams cut at random points: seq 1..N once each', async () => {
    const {seen, finished} = await cutRun(11, 4, {batchEvery: 4, eol: '\r\n'});
    assert.deepEqual(seen, range(1, N));
    assert.equal(finished.status, 'closed');
  });

  test('compressed payloads cut at random points: seq 1..N once each, inflated', async () => {
    const {seen, finished, run} = await cutRun(12, 3, {compress: true, batchEvery: 3});
    assert.deepEqual(seen, range(1, N));
    assert.equal(finished.status, 'closed');
    assert.equal(run.state.answer, 'All done.');
  });

  test('MockEventSource cut three times: the library resumes it by after=', async () => {
    const clock = fakeClock();
    const text = sseText(RID, makeRun(RID, N), {heartbeats: true});
    const Source = MockEventSource.from(text, {timers: clock.timers, speed: 100, cuts: [7, 19, 3]});
    const run = startRun('q', {EventSource: Source, timers: clock.timers, random: () => 0.5});
    const {seen} = consumer(run);
    let finished = null;
    run.finished.then((r) => {
      finished = r;
    });
    await clock.runUntil(() => finished !== null);
    assert.deepEqual(seen, range(1, N));
    assert.equal(Source.opened.length, 4);
    assert.match(Source.opened[0].url, /^api\/chat\/stream\?message=q&heartbeat=event$/);
    const afters = Source.opened.slice(1).map((es) => afterOf(es.url));
    assert.ok(afters.every((a, i) => a > 0 && (i === 0 || a > afters[i - 1])), String(afters));
  });
});

describe('backoff, jitter and the retry limit', () => {
  // Every connection of run RID fails at once; returns the delays chosen.
  async function failing(
      random, options = {}, answer = () => Promise.reject(new TypeError('refused'))) {
    const clock = fakeClock();
    const fetch = recordingFetch((call) => answer(call));
    const run = attach(RID, {transport: 'fetch', fetch, timers: clock.timers, random, ...options});
    const delays = [];
    const statuses = [];
    run.onStatus((status, detail) => {
      statuses.push(status);
      if (status === 'reconnecting') delays.push(detail.delayMs);
    });
    let finished = null;
    run.finished.then((r) => {
      finished = r;
    });
    const times = [];
    await clock.runUntil(() => {
      while (times.length < fetch.calls.length) times.push(clock.now);
      return finished !== null;
    });
    return {delays, statuses, finished, fetch, run, times};
  }

  test('doubles up to maxMs, gives up after maxAttempts (jitter low)', async () => {
    const {delays, finished, fetch, run, times} = await failing(() => 0);
    // factor 1 - jitter = 0.8 of 1000, 2000, 4000, 8000, 8000, 8000.
    assert.deepEqual(delays, [800, 1600, 3200, 6400, 6400, 6400]);
    assert.equal(fetch.calls.length, RETRY_POLICY.maxAttempts + 1);
    assert.deepEqual(times, [0, 800, 2400, 5600, 12000, 18400, 24800]);
    assert.equal(finished.status, 'failed');
    assert.equal(run.state.connection, 'error');
    assert.match(run.state.errors[0].message, /6 attempts/);
  });

  test('jitter high stays within maxMs; delays follow session.js retryDelayMs', async () => {
    const random = () => 0.75;
    const {delays} = await failing(random);
    const expected = range(1, 6).map((a) => retryDelayMs(a, RETRY_POLICY, random));
    assert.deepEqual(delays, expected);
    assert.deepEqual(delays, [1100, 2200, 4400, 8000, 8000, 8000]);
  });

  test('the retry option replaces the policy', async () => {
    const {delays, fetch} =
        await failing(() => 0.5, {retry: {initialMs: 100, maxMs: 300, maxAttempts: 3, jitter: 0}});
    assert.deepEqual(delays, [100, 200, 300]);
    assert.equal(fetch.calls.length, 4);
  });

  test('a 503 waits at least its Retry-After', async () => {
    const {delays} = await failing(
        () => 0, {retry: {maxAttempts: 2}},
        (call) =>
            chunkedResponse([], {status: 503, headers: {'Retry-After': '5'}, signal: call.signal}));
    assert.deepEqual(delays, [5000, 5000]);
  });

  test('a 400 is final: no retry', async () => {
    const {delays, finished, fetch} = await failing(
        () => 0, {},
        (call) =>
            chunkedResponse(['{"error":"invalid_argument"}'], {status: 400, signal: call.signal}));
    assert.deepEqual(delays, []);
    assert.equal(fetch.calls.length, 1);
    assert.equal(finished.status, 'failed');
  });

  test('a 204 on resume ends the run quietly once complete arrived', async () => {
    const clock = fakeClock();
    const updates = makeRun(RID, 5);
    const fetch = recordingFetch((call) => {
      if (call.index === 0) {
        // Everything up to complete, then the connection breaks before done.
        const text = sseText(RID, updates);
        return chunkedResponse(
            [text.slice(0, text.indexOf('event: done'))], {endWith: 'error', signal: call.signal});
      }
      return chunkedResponse([], {status: 204, signal: call.signal});
    });
    const run = startRun('q', {transport: 'fetch', fetch, timers: clock.timers, random: () => 0.5});
    let finished = null;
    run.finished.then((r) => {
      finished = r;
    });
    await clock.runUntil(() => finished !== null);
    // `complete` arrived: onSourceClosed says finished, no reconnect needed.
    assert.equal(fetch.calls.length, 1);
    assert.equal(finished.status, 'closed');
    assert.equal(run.state.status, 'complete');
    assert.equal(run.state.errors.length, 0);
  });

  test('a 204 on resume ends following (the run is over; nothing follows)', async () => {
    const clock = fakeClock();
    const fetch = recordingFetch((call) => {
      if (call.index > 0) return chunkedResponse([], {status: 204, signal: call.signal});
      const text = sseText(RID, makeRun(RID, 9), {heartbeats: false});
      return chunkedResponse(
          [text.slice(0, text.indexOf(`id: ${RID}:4`))], {endWith: 'error', signal: call.signal});
    });
    const run = startRun('q', {transport: 'fetch', fetch, timers: clock.timers, random: () => 0.5});
    let finished = null;
    run.finished.then((r) => {
      finished = r;
    });
    await clock.runUntil(() => finished !== null);
    assert.equal(fetch.calls.length, 2);
    assert.equal(afterOf(fetch.calls[1].url), 3);
    assert.equal(finished.status, 'closed');
    assert.match(run.state.errors[0].message, /nothing followed seq 3/);
  });

  test('a new run refused before it is named is not started again', async () => {
    const clock = fakeClock();
    const fetch = recordingFetch(() => Promise.reject(new TypeError('refused')));
    const run = startRun('q', {transport: 'fetch', fetch, timers: clock.timers});
    const finished = await run.finished;
    assert.equal(finished.status, 'failed');
    assert.equal(fetch.calls.length, 1);
  });

  test('attempts count again from zero after a connected', async () => {
    const clock = fakeClock();
    const updates = makeRun(RID, 30);
    const fetch = recordingFetch((call) => {
      // Odd calls: refused; even calls: connected and one more update, then a cut.
      if (call.index % 2 === 1) return Promise.reject(new TypeError('refused'));
      const after = afterOf(call.url) || 0;
      const text = sseText(RID, updates, {after, heartbeats: false});
      const cut = text.indexOf(`id: ${RID}:${after + 2}`);
      return chunkedResponse([cut > 0 ? text.slice(0, cut) : text], {signal: call.signal});
    });
    const run = attach(RID, {
      transport: 'fetch',
      fetch,
      timers: clock.timers,
      random: () => 0,
      retry: {maxAttempts: 2}
    });
    const attempts = [];
    run.onStatus((s, d) => {
      if (s === 'reconnecting') attempts.push(d.attempt);
    });
    const {seen} = consumer(run);
    const finished = await (async () => {
      let f = null;
      run.finished.then((r) => {
        f = r;
      });
      await clock.runUntil(() => f !== null);
      return f;
    })();
    assert.equal(finished.status, 'closed');
    assert.deepEqual(seen, range(1, 30));
    assert.ok(attempts.every((a) => a <= 2), String(attempts));
    assert.ok(attempts.filter((a) => a === 2).length > 5);
  });
});

describe('heartbeat watchdog', () => {
  test('silence for 2.5 heartbeat intervals closes and resumes with after=', async () => {
    const clock = fakeClock();
    const updates = makeRun(RID, 10);
    const bodies = [];
    const fetch = recordingFetch((call) => {
      const body = pushableResponse({signal: call.signal});
      bodies.push(body);
      const after = afterOf(call.url) || 0;
      const text = sseText(RID, updates, {after, heartbeats: false});
      // The first connection sends up to seq 4, then goes silent (half-open).
      body.push(call.index === 0 ? text.slice(0, text.indexOf(`id: ${RID}:5`)) : text);
      if (call.index > 0) body.end();
      return body.response;
    });
    const run = startRun(
        'q',
        {transport: 'fetch', fetch, timers: clock.timers, random: () => 0.5, heartbeatMs: 1000});
    const {seen} = consumer(run);
    const reasons = [];
    run.onStatus((s, d) => {
      if (s === 'reconnecting') reasons.push(d.reason);
    });
    await clock.advance(0);
    assert.deepEqual(seen, [1, 2, 3, 4]);
    // Heartbeat comments keep a connection alive, whatever the gap.
    for (let i = 0; i < 5; i++) {
      await clock.advance(2000);
      bodies[0].push(': heartbeat\n\n');
    }
    await clock.advance(2499);
    assert.equal(fetch.calls.length, 1);
    await clock.advance(1);
    assert.deepEqual(reasons, ['watchdog']);
    await clock.advance(RETRY_POLICY.maxMs);
    assert.equal(fetch.calls.length, 2);
    assert.equal(afterOf(fetch.calls[1].url), 4);
    await run.finished;
    assert.deepEqual(seen, range(1, 10));
  });

  test('over EventSource it asks for heartbeat events and counts them', async () => {
    const clock = fakeClock();
    const opened = [];
    // An EventSource that opens, sends connected, then only heartbeat
    // events for a while, then nothing.
    class Source {
      constructor(url) {
        this.url = url;
        this.listeners = {};
        this.readyState = 0;
        opened.push(this);
      }
      addEventListener(type, fn) {
        (this.listeners[type] ||= []).push(fn);
      }
      fire(type, data, lastEventId = '') {
        for (const fn of this.listeners[type] || []) fn({type, data, lastEventId});
      }
      close() {
        this.readyState = 2;
      }
    }
    const run = startRun(
        'q', {EventSource: Source, timers: clock.timers, heartbeatMs: 1000, random: () => 0.5});
    await clock.advance(0);
    assert.match(opened[0].url, /heartbeat=event/);
    opened[0].fire(
        'connected', JSON.stringify({type: 'connected', status: 'connected', request_id: RID}),
        `${RID}:0`);
    let heartbeats = 0;
    run.on('heartbeat', () => heartbeats++);
    for (let i = 0; i < 4; i++) {
      await clock.advance(2000);
      opened[0].fire('heartbeat', JSON.stringify({type: 'heartbeat', request_id: RID}));
    }
    assert.equal(heartbeats, 4);
    assert.equal(opened.length, 1);
    assert.equal(run.state.eventCount, 1, 'heartbeats do not reach the reducer');
    await clock.advance(2500);
    assert.equal(opened[0].readyState, 2, 'the silent connection is closed');
    await clock.advance(RETRY_POLICY.initialMs);
    assert.equal(opened.length, 2);
    assert.match(opened[1].url, new RegExp(`^api/runs/${RID}/stream\\?after=0&heartbeat=event$`));
    run.close();
  });

  test('watchdog: false neither asks for heartbeat events nor fires', async () => {
    const clock = fakeClock();
    const Source = MockEventSource.from('', {timers: clock.timers});
    const run = attach(RID, {EventSource: Source, timers: clock.timers, watchdog: false});
    await clock.advance(0);
    assert.equal(Source.opened[0].url, `api/runs/${RID}/stream?after=0`);
    run.close();
  });
});

describe('handlers', () => {
  test(
      'on(type) gets only its kind; status and error updates never reach onStatus or onError',
      async () => {
        const updates = makeRun(RID, 15);
        const fetch = recordingFetch(
            (call) => chunkedResponse([sseText(RID, updates)], {signal: call.signal}));
        const byType = {};
        const statuses = [];
        const errors = [];
        const states = [];
        const run = startRun('q', {
          transport: 'fetch',
          fetch,
          watchdog: false,
          on: {status: (u) => (byType.status ||= []).push(u.seq)},
          onStatus: (s) => statuses.push(s),
          onError: (e) => errors.push(e),
        });
        run.on('error', (u) => (byType.error ||= []).push(u.seq));
        const off = run.on('progress', (u) => (byType.progress ||= []).push(u.seq));
        run.on('progress', (u) => {
          if (u.seq === 3) off();
        });
        run.onState((state, u) => states.push([u.type, state.lastSeq]));
        await run.finished;
        assert.deepEqual(byType.status, [1]);
        assert.deepEqual(byType.error, [7, 14], 'once each: the named copies are repeats');
        assert.deepEqual(byType.progress, [2, 3], 'unsubscribed after seq 3');
        assert.deepEqual(statuses, ['connecting', 'open', 'closed']);
        assert.deepEqual(errors, []);
        // onState: the client's reset was before any handler; then every update.
        assert.deepEqual(states[0], ['connected', 0]);
        assert.deepEqual(states[states.length - 1], ['done', 15]);
        assert.equal(states.length, 17);
      });

  test('a handler that throws is reported to onError; delivery goes on', async () => {
    const fetch = recordingFetch(
        (call) => chunkedResponse([sseText(RID, makeRun(RID, 4))], {signal: call.signal}));
    const errors = [];
    const run = startRun('q', {
      transport: 'fetch',
      fetch,
      watchdog: false,
      onError: (e, d) => errors.push([e.message, d.where])
    });
    run.on('progress', () => {
      throw new Error('boom');
    });
    const {seen} = consumer(run);
    await run.finished;
    assert.deepEqual(seen, [1, 2, 3, 4]);
    assert.deepEqual(errors, [['boom', 'progress handler'], ['boom', 'progress handler']]);
  });
});

describe('cancel and close', () => {
  test('cancel() sends DELETE and the stream brings the cancelled ending', async () => {
    const clock = fakeClock();
    let body = null;
    const fetch = recordingFetch((call) => {
      if (call.method === 'DELETE') return new Response('{"cancelled":true}', {status: 202});
      body = pushableResponse({signal: call.signal});
      body.push(sseText(RID, makeRun(RID, 3)).split('event: message')[0]);
      return body.response;
    });
    const run = startRun('q', {transport: 'fetch', fetch, timers: clock.timers});
    await clock.advance(0);
    assert.equal(run.requestId, RID);
    const result = await run.cancel();
    assert.deepEqual(result, {outcome: 'accepted', note: result.note, status: 202});
    assert.equal(fetch.calls[1].method, 'DELETE');
    assert.equal(fetch.calls[1].url, `api/runs/${RID}`);
    assert.equal(run.state.cancel.state, 'accepted');
    body.push(`event: done\ndata: {"type":"done","status":"cancelled","request_id":"${RID}"}\n\n`);
    const finished = await run.finished;
    assert.equal(finished.status, 'closed');
    assert.equal(run.state.status, 'cancelled');
  });

  test('cancel() of a run the gateway no longer knows stops following', async () => {
    const clock = fakeClock();
    const fetch = recordingFetch(
        (call) =>
            (call.method === 'DELETE' ? new Response('{}', {status: 404}) :
                                        pushableResponse({signal: call.signal}).response));
    const run = attach(RID, {transport: 'fetch', fetch, timers: clock.timers});
    await clock.advance(0);
    const result = await run.cancel();
    assert.equal(result.outcome, 'unknown');
    assert.equal((await run.finished).status, 'closed');
    assert.ok(fetch.calls[0].signal.aborted, 'the stream request was aborted');
  });

  test('close() stops: no more updates, no reconnect, no timers left', async () => {
    const clock = fakeClock();
    let body = null;
    const fetch = recordingFetch((call) => {
      body = pushableResponse({signal: call.signal});
      return body.response;
    });
    const run = startRun('q', {transport: 'fetch', fetch, timers: clock.timers});
    const {seen} = consumer(run);
    await clock.advance(0);
    body.push(sseText(RID, makeRun(RID, 6)).split(`id: ${RID}:3`)[0]);
    await settle();
    run.close();
    assert.equal(clock.pending, 0);
    await clock.advance(60000);
    assert.deepEqual(seen, [1, 2]);
    assert.equal(fetch.calls.length, 1);
    assert.equal(run.status, 'closed');
    assert.equal(run.state.stopped.cancelled, false);
  });
});
