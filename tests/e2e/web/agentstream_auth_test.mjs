// Tests of the client library's `token` option (gateway/web/auth.js and its
// use in agentstream.js / stream_request.js), with Node's built-in runner:
// the bearer header on every request (new run, POST, resume, cancel,
// api/specialists), never the token in a URL, a token function asked
// before each request, fetch instead of EventSource with a token, a 401 as
// a distinct end that is never retried, and the challenge's description.

import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {attach, fetchSpecialists, HttpError, MockEventSource, parseChallenge, startRun} from '../../../gateway/web/agentstream.js';

import {afterOf, chunkedResponse, fakeClock, makeRun, recordingFetch, seededRandom, sseText} from './agentstream_fakes.mjs';

const RID = 'req_a7e2';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
const CHALLENGE = 'Bearer realm="agentstream", error="invalid_token", ' +
    'error_description="the token has expired"';

function unauthorized(call, header = CHALLENGE) {
  return new Response(JSON.stringify({error: 'unauthenticated', message: 'no'}), {
    status: 401,
    headers: {'WWW-Authenticate': header, 'Content-Type': 'application/json'},
  });
}

// A gateway that wants `Bearer good`: serves the run, cut once after
// `cutAt` bytes so the library resumes; 401 otherwise.
function gatewayWanting(token, {cutAt = null} = {}) {
  const updates = makeRun(RID, 12);
  return recordingFetch((call) => {
    if (call.headers.Authorization !== `Bearer ${token}`) return unauthorized(call);
    if (call.method === 'DELETE') return new Response('{}', {status: 202});
    let text = sseText(RID, updates, {after: afterOf(call.url) || 0});
    if (cutAt !== null && call.index === 0) text = text.slice(0, cutAt);
    return chunkedResponse([text], {signal: call.signal, headers: {'X-Request-Id': RID}});
  });
}

async function finish(run, clock) {
  let finished = null;
  run.finished.then((r) => {
    finished = r;
  });
  await clock.runUntil(() => finished !== null);
  return finished;
}

describe('the token option', () => {
  test('every stream request carries Authorization: Bearer; no URL holds the token', async () => {
    const clock = fakeClock();
    const fetch = gatewayWanting(TOKEN, {cutAt: 400});
    const run = startRun('Assess ACC-1042', {
      token: TOKEN,
      fetch,
      EventSource: MockEventSource,  // There is one, but a token needs headers.
      timers: clock.timers,
      random: seededRandom(3),
    });
    const finished = await finish(run, clock);
    assert.equal(finished.status, 'closed');
    assert.equal(run.state.answer, 'All done.');
    assert.ok(fetch.calls.length >= 2, 'the cut stream was resumed');
    assert.match(fetch.calls[1].url, /^api\/runs\/req_a7e2\/stream\?after=\d+/);
    for (const call of fetch.calls) {
      assert.equal(call.headers.Authorization, `Bearer ${TOKEN}`, call.url);
      assert.ok(!call.url.includes(TOKEN), `the token is in ${call.url}`);
      assert.ok(!/access_token/.test(call.url), call.url);
    }
  });

  test('POST runs and attach carry it too', async () => {
    for (const make
             of [(o) => startRun('q', {method: 'POST', ...o}),
                (o) => attach(RID, {after: 3, ...o}),
    ]) {
      const clock = fakeClock();
      const fetch = gatewayWanting(TOKEN);
      const run = make({token: TOKEN, fetch, timers: clock.timers});
      assert.equal((await finish(run, clock)).status, 'closed');
      assert.equal(fetch.calls[0].headers.Authorization, `Bearer ${TOKEN}`);
      assert.ok(!fetch.calls[0].url.includes(TOKEN));
    }
  });

  test('a token function is asked before each request (a refreshed token is used)', async () => {
    const clock = fakeClock();
    const tokens = ['t1', 't2', 't3', 't4'];
    let asked = 0;
    const updates = makeRun(RID, 12);
    const fetch = recordingFetch((call) => {
      let text = sseText(RID, updates, {after: afterOf(call.url) || 0});
      if (call.index === 0) text = text.slice(0, 400);
      return chunkedResponse([text], {signal: call.signal, headers: {'X-Request-Id': RID}});
    });
    const run = startRun('q', {
      token: async () => tokens[asked++],
      fetch,
      timers: clock.timers,
      random: () => 0.5,
    });
    assert.equal((await finish(run, clock)).status, 'closed');
    assert.deepEqual(
        fetch.calls.map((c) => c.headers.Authorization),
        fetch.calls.map((c, i) => `Bearer t${i + 1}`));
    assert.equal(asked, fetch.calls.length);
  });

  test('no token option: EventSource stays the transport, no header anywhere', async () => {
    const clock = fakeClock();
    const ES = MockEventSource.from(sseText(RID, makeRun(RID, 5)), {timers: clock.timers});
    const fetch = recordingFetch(() => assert.fail('fetch used without a token'));
    const run = startRun('q', {EventSource: ES, fetch, timers: clock.timers});
    assert.equal((await finish(run, clock)).status, 'closed');
    assert.equal(ES.opened.length, 1);
  });

  test('transport "eventsource" with a token is refused at once', () => {
    assert.throws(
        () => startRun('q', {token: 'x', transport: 'eventsource', EventSource: MockEventSource}),
        /token/);
  });
});

describe('a 401', () => {
  for (const [name, make] of [
           ['a new run', (o) => startRun('q', o)],
           ['a resume (attach)', (o) => attach(RID, {after: 4, ...o})],
  ]) {
    test(`ends ${name} at once with reason "unauthorized", never retried`, async () => {
      const clock = fakeClock();
      const fetch = recordingFetch((call) => unauthorized(call));
      const statuses = [];
      const run = make({
        token: () => 'expired',
        fetch,
        timers: clock.timers,
        onStatus: (s, d) => statuses.push([s, d]),
      });
      const finished = await finish(run, clock);
      await clock.advance(60000);  // Nothing is scheduled: no reconnect follows.
      assert.equal(fetch.calls.length, 1);
      assert.equal(finished.status, 'failed');
      assert.equal(finished.detail.reason, 'unauthorized');
      assert.equal(finished.detail.httpStatus, 401);
      assert.equal(finished.detail.sentToken, true);
      assert.deepEqual(
          finished.detail.challenge,
          {error: 'invalid_token', description: 'the token has expired'});
      assert.equal(
          finished.detail.message, 'The gateway refused the access token: the token has expired.');
      assert.ok(!statuses.some(([s]) => s === 'reconnecting'));
      const errors = run.state.errors;
      assert.equal(errors.length, 1);
      assert.equal(errors[0].code, 'unauthorized');
      assert.equal(errors[0].retryable, false);
      assert.equal(run.state.status, 'failed');
    });
  }

  test(
      'without a token (the function returns \'\'): no header, "requires an access token"',
      async () => {
        const clock = fakeClock();
        const fetch = recordingFetch((call) => unauthorized(call, 'Bearer realm="agentstream"'));
        const run = startRun('q', {token: () => '', fetch, timers: clock.timers});
        const finished = await finish(run, clock);
        assert.equal(fetch.calls[0].headers.Authorization, undefined);
        assert.equal(finished.detail.reason, 'unauthorized');
        assert.equal(finished.detail.sentToken, false);
        assert.equal(finished.detail.message, 'The gateway requires an access token.');
      });

  test('a token function that throws fails the run without a request', async () => {
    const clock = fakeClock();
    const fetch = recordingFetch(() => assert.fail('no request without a token'));
    const run = startRun('q', {
      token: () => {
        throw new Error('the session expired');
      },
      fetch,
      timers: clock.timers,
    });
    const finished = await finish(run, clock);
    assert.equal(finished.status, 'failed');
    assert.match(finished.detail.message, /the session expired/);
    assert.equal(fetch.calls.length, 0);
  });
});

describe('cancel with a token', () => {
  async function streaming(token, fetch) {
    const clock = fakeClock();
    const run = attach(RID, {token, fetch, timers: clock.timers, cancelGraceMs: 10});
    await clock.advance(0);
    return {run, clock};
  }

  test(
      'the DELETE carries the bearer header; a 401 is its own outcome with the reason',
      async () => {
        let refuse = false;
        const fetch = recordingFetch((call) => {
          if (call.method === 'DELETE') {
            return refuse ? unauthorized(call) : new Response('{}', {status: 202});
          }
          return chunkedResponse([], {endWith: 'hang', signal: call.signal});
        });
        const {run} = await streaming(() => TOKEN, fetch);
        const ok = await run.cancel();
        assert.equal(ok.outcome, 'accepted');
        const del = fetch.calls.find((c) => c.method === 'DELETE');
        assert.equal(del.url, `api/runs/${RID}`);
        assert.equal(del.headers.Authorization, `Bearer ${TOKEN}`);
        refuse = true;
        const refused = await run.cancel();
        assert.equal(refused.outcome, 'unauthorized');
        assert.equal(refused.status, 401);
        assert.equal(refused.note, 'The gateway refused the access token: the token has expired.');
        run.close();
      });
});

describe('fetchSpecialists', () => {
  test('sends the bearer header and returns the body', async () => {
    const fetch = recordingFetch(() => Response.json({specialists: [{name: 'DataAnalyst'}]}));
    const body = await fetchSpecialists({token: () => TOKEN, fetch, baseUrl: 'http://gw/'});
    assert.deepEqual(body, {specialists: [{name: 'DataAnalyst'}]});
    assert.equal(fetch.calls[0].url, 'http://gw/api/specialists');
    assert.equal(fetch.calls[0].headers.Authorization, `Bearer ${TOKEN}`);
  });

  test('no token: no header; a 401 rejects with an HttpError, reason unauthorized', async () => {
    const fetch = recordingFetch((call) => unauthorized(call, 'Bearer realm="agentstream"'));
    await assert.rejects(fetchSpecialists({fetch}), (e) => {
      assert.ok(e instanceof HttpError);
      assert.equal(e.status, 401);
      assert.equal(e.reason, 'unauthorized');
      assert.equal(e.sentToken, false);
      assert.equal(e.message, 'The gateway requires an access token.');
      return true;
    });
    assert.equal(fetch.calls[0].headers.Authorization, undefined);
  });
});

describe('parseChallenge', () => {
  test('RFC 6750 parameters, quoted with escapes or bare; absent ones empty', () => {
    assert.deepEqual(
        parseChallenge(CHALLENGE), {error: 'invalid_token', description: 'the token has expired'});
    assert.deepEqual(
        parseChallenge(
            'Bearer realm="a", error=invalid_token, error_description="say \\"no\\", twice"'),
        {error: 'invalid_token', description: 'say "no", twice'});
    assert.deepEqual(parseChallenge('Bearer realm="agentstream"'), {error: '', description: ''});
    assert.deepEqual(parseChallenge(null), {error: '', description: ''});
  });
});
