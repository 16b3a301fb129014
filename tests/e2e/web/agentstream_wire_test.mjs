// Tests of the wire side of the client library, with Node's built-in runner:
// the SSE parser (gateway/web/sse_parser.js) on text cut anywhere, the event
// decoding (stream_decode.js: ids, batches, gzip) and the library's batches,
// gzip payloads and `types`, the URLs and POST bodies of every option
// (stream_request.js), MockEventSource's playback of a recording (timing,
// speed, resume, end), agentstream.d.ts kept in step with
// proto/agentstream/v1/update.proto, and docs/CLIENT.md's page.

import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {describe, test} from 'node:test';
import {gzipSync} from 'node:zlib';

import {attach, MockEventSource, parseEventId, parseRecording, parseSse, SseParser, startRun, UPDATE_TYPES} from '../../../gateway/web/agentstream.js';
import {inflateUpdate, splitEvent} from '../../../gateway/web/stream_decode.js';

import {afterOf, chunkedResponse, compressed, consumer, fakeClock, makeRun, range, recordingFetch, sseText} from './agentstream_fakes.mjs';

const RID = 'req_91c3d7';

function collect(pieces) {
  const out = [];
  const parser = new SseParser({
    onEvent: (e) => out.push(['event', e.type, e.data, e.lastEventId, e.id]),
    onComment: (c) => out.push(['comment', c]),
    onRetry: (ms) => out.push(['retry', ms]),
  });
  for (const p of pieces) parser.push(p);
  parser.end();
  return out;
}

describe('SSE parser', () => {
  const STREAM = '\ufeffretry: 2000\r\n\r\n' +
      `id: ${RID}:0\r\nevent: connected\r\ndata: {"type":"connected"}\r\n\r\n` +
      ': heartbeat\n\n' +
      `id: ${RID}:1\nevent: message\ndata: line one\ndata:  two, with a space\ndata\n\n` +
      'event: error\rdata: {"copy":true}\r\r' +
      'data: é ünïcode ✓\n\n' +
      `id: bad\0id\ndata: x\n\n` +
      'event: nodata\n\n' +
      'retry: soon\n' +
      ':\n' +
      'data: cut off at the end';
  const EXPECTED = [
    ['retry', 2000],
    ['event', 'connected', '{"type":"connected"}', `${RID}:0`, `${RID}:0`],
    ['comment', 'heartbeat'],
    ['event', 'message', 'line one\n two, with a space\n', `${RID}:1`, `${RID}:1`],
    ['event', 'error', '{"copy":true}', `${RID}:1`, null],
    ['event', 'message', 'é ünïcode ✓', `${RID}:1`, null],
    ['event', 'message', 'x', `${RID}:1`, null],
    ['comment', ''],
  ];

  test('whole: CRLF, CR and LF lines, multi-line data, comments, ids, retry', () => {
    assert.deepEqual(collect([STREAM]), EXPECTED);
  });

  test('cut at every point into two pieces (inside CRLF too): the same events', () => {
    for (let i = 1; i < STREAM.length; i++) {
      assert.deepEqual(collect([STREAM.slice(0, i), STREAM.slice(i)]), EXPECTED, `cut at ${i}`);
    }
  });

  test('one character at a time: the same events', () => {
    assert.deepEqual(collect([...STREAM]), EXPECTED);
  });

  test('a CR ending a piece and the LF starting the next make one line break', () => {
    assert.deepEqual(
        collect(['data: a\r', '\ndata: b\r', '\n\r', '\n']),
        [['event', 'message', 'a\nb', '', null]]);
  });

  test('parseSse lists a recording', () => {
    const items = parseSse(sseText(RID, makeRun(RID, 3)));
    assert.deepEqual(
        items.map((i) => i.kind === 'event' ? i.type : i.kind),
        ['retry', 'connected', 'message', 'comment', 'message', 'message', 'done']);
  });
});

describe('event decoding', () => {
  test('ids: <request_id>:<seq>', () => {
    assert.deepEqual(parseEventId(`${RID}:42`), {requestId: RID, seq: 42});
    assert.deepEqual(parseEventId('a:b:7'), {requestId: 'a:b', seq: 7});
    for (const bad
             of ['', ':5', `${RID}:`, `${RID}:-1`, `${RID}:1e3`, null, undefined, 'nocolon']) {
      assert.equal(parseEventId(bad), null, String(bad));
    }
  });

  test('a batch splits into its updates in order; bad data throws', () => {
    const updates = makeRun(RID, 4);
    assert.deepEqual(
        splitEvent('batch', JSON.stringify({type: 'batch', request_id: RID, updates})), updates);
    assert.deepEqual(splitEvent('message', JSON.stringify(updates[1])), [updates[1]]);
    assert.throws(() => splitEvent('message', 'not json'));
    assert.throws(() => splitEvent('message', '[1,2]'));
    assert.throws(() => splitEvent('batch', '{"type":"batch"}'), /updates/);
  });

  test('a gzip envelope inflates to the update (node:zlib made it)', async () => {
    const update = {
      type: 'partial_result',
      request_id: RID,
      seq: 9,
      specialist: 'DataAnalyst',
      emitted_at_ns: 1,
      result: {rows: Array.from({length: 200}, (_, i) => ({i, v: `row ${i}`}))}
    };
    const envelope = compressed(update);
    assert.ok(envelope.data.length < JSON.stringify(update).length / 2);
    assert.deepEqual(await inflateUpdate(envelope), update);
    // The envelope's routing fields fill in what the payload lacks.
    const bare = {
      type: 'progress',
      seq: 3,
      compressed: true,
      encoding: 'gzip',
      data: gzipSync('{"progress":50}').toString('base64')
    };
    assert.deepEqual(await inflateUpdate(bare), {progress: 50, type: 'progress', seq: 3});
    await assert.rejects(inflateUpdate({...envelope, encoding: 'br'}), /unknown payload encoding/);
    await assert.rejects(inflateUpdate({...envelope, data: 'bm90IGd6aXA='}));
  });
});

describe('MockEventSource', () => {
  // Plays `text` with a class from MockEventSource.from and records when
  // (virtual ms) each event arrived.
  async function play(text, options = {}, url = '/api/chat/stream?message=q') {
    const clock = fakeClock();
    const Source = MockEventSource.from(text, {timers: clock.timers, ...options});
    const es = new Source(url);
    const got = [];
    const states = [es.readyState];
    for (const name of ['connected', 'done', 'error', 'timeout']) {
      es.addEventListener(
          name, (e) => got.push({at: clock.now, type: name, data: e.data, id: e.lastEventId}));
    }
    es.onmessage = (e) =>
        got.push({at: clock.now, type: 'message', data: e.data, id: e.lastEventId});
    es.onopen = () => states.push(es.readyState);
    await clock.runUntil(() => es.readyState === MockEventSource.CLOSED);
    states.push(es.readyState);
    return {got, states, es, clock};
  }

  const timed = sseText(RID, makeRun(RID, 5), {heartbeats: true});

  test(
      'plays a recording with its original timing (emitted_at_ns), heartbeats hidden', async () => {
        const {got, states} = await play(timed);
        assert.deepEqual(
            got.map((g) => g.type),
            ['connected', 'message', 'message', 'message', 'message', 'message', 'done', 'error']);
        // Updates were emitted 10 ms apart; connected and done have no timestamp.
        assert.deepEqual(got.map((g) => g.at), [0, 0, 10, 20, 30, 40, 40, 40]);
        assert.deepEqual(got.slice(1, 6).map((g) => JSON.parse(g.data).seq), [1, 2, 3, 4, 5]);
        assert.deepEqual(
            got.slice(1, 6).map((g) => g.id), [1, 2, 3, 4, 5].map((s) => `${RID}:${s}`));
        assert.equal(got[7].data, undefined, 'the end is an error without data');
        assert.deepEqual(
            states, [MockEventSource.CONNECTING, MockEventSource.OPEN, MockEventSource.CLOSED]);
      });

  test('speed divides the delays', async () => {
    const {got} = await play(timed, {speed: 10});
    assert.deepEqual(got.map((g) => g.at), [0, 0, 1, 2, 3, 4, 4, 4]);
  });

  test('without timestamps: a fixed interval, also scaled', async () => {
    const text = 'data: a\n\ndata: b\r\n\r\nevent: done\ndata: {}\n\n';
    assert.equal(parseRecording(text).timed, false);
    const {got} = await play(text, {intervalMs: 50});
    assert.deepEqual(got.map((g) => [g.at, g.type, g.data]), [
      [50, 'message', 'a'], [100, 'message', 'b'], [150, 'done', '{}'], [150, 'error', undefined]
    ]);
    const fast = await play(text, {intervalMs: 50, speed: 5});
    assert.deepEqual(fast.got.map((g) => g.at), [10, 20, 30, 30]);
  });

  test('resumes after=N like the gateway: connected resumed, then what follows N', async () => {
    const {got} = await play(timed, {}, `/api/runs/${RID}/stream?after=3`);
    assert.deepEqual(got.map((g) => g.type), ['connected', 'message', 'message', 'done', 'error']);
    assert.deepEqual(
        JSON.parse(got[0].data),
        {type: 'connected', status: 'resumed', request_id: RID, after_seq: 3});
    assert.equal(got[0].id, `${RID}:3`);
    assert.deepEqual(got.slice(1, 3).map((g) => JSON.parse(g.data).seq), [4, 5]);
    const past = await play(timed, {}, `/api/runs/${RID}/stream?after=5`);
    assert.deepEqual(
        past.got.map((g) => g.type), ['error'], 'nothing after the last seq: fails at once (204)');
  });

  test('an error update plays twice (message and its own event), as recorded', async () => {
    const text = sseText(RID, makeRun(RID, 8), {heartbeats: false});
    const {got} = await play(text);
    const sevens = got.filter((g) => g.data && g.data.includes('"seq":7'));
    assert.deepEqual(sevens.map((g) => g.type), ['message', 'error']);
  });

  test('cuts stop an instance early; close() stops playback', async () => {
    const {got} = await play(timed, {cuts: [2]});
    assert.deepEqual(got.map((g) => g.type), ['connected', 'message', 'error']);
    const clock = fakeClock();
    const es = new (MockEventSource.from(timed, {timers: clock.timers}))('/x');
    let n = 0;
    es.onmessage = () => {
      n++;
      if (n === 2) es.close();
    };
    await clock.advance(1000);
    assert.equal(n, 2);
    assert.equal(clock.pending, 0);
  });

  test('a plain instance takes the recording in its init', async () => {
    const clock = fakeClock();
    const es =
        new MockEventSource('/x', {recording: 'data: hi\n\n', timers: clock.timers, intervalMs: 1});
    const got = [];
    es.addEventListener('message', (e) => got.push(e.data));
    await clock.advance(10);
    assert.deepEqual(got, ['hi']);
  });
});

describe('agentstream.d.ts follows the proto', () => {
  const proto =
      readFileSync(new URL('../../../proto/agentstream/v1/update.proto', import.meta.url), 'utf8');
  const dts =
      readFileSync(new URL('../../../gateway/web/agentstream.d.ts', import.meta.url), 'utf8');

  function messageFields(name) {
    const body = proto.match(new RegExp(`message ${name} \\{([^}]*)\\}`));
    assert.ok(body, `message ${name} in update.proto`);
    // The Update message's own fields are the envelope, before its oneof.
    return [
      ...body[1].split('oneof')[0].matchAll(/^\s*(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+;/gm)
    ].map((m) => m[1]);
  }

  const kinds =
      [...proto.match(/oneof kind \{([^}]*)\}/)[1].matchAll(/^\s*(\w+)\s+(\w+)\s*=\s*\d+;/gm)].map(
          (m) => ({message: m[1], type: m[2]}));

  test('UPDATE_TYPES is the oneof kind', () => {
    assert.deepEqual([...UPDATE_TYPES], kinds.map((k) => k.type));
  });

  test('one interface per kind with each of its fields; all in RunUpdate', () => {
    const union = dts.match(/export type RunUpdate =([^;]*);/)[1];
    for (const {message, type} of kinds) {
      const iface = dts.match(new RegExp(
          `export interface (\\w+) extends UpdateEnvelope \\{\\s*type: '${type}';([^}]*)\\}`));
      assert.ok(iface, `an interface with type '${type}'`);
      for (const field of messageFields(message)) {
        assert.match(iface[2], new RegExp(`\\n\\s*${field}\\??:`), `${type}.${field}`);
      }
      assert.match(union, new RegExp(`\\b${iface[1]}\\b`), `${iface[1]} in RunUpdate`);
    }
  });

  test('the envelope and the enums', () => {
    const envelope = dts.match(/export interface UpdateEnvelope \{([^}]*)\}/)[1];
    for (const field of messageFields('Update')) {
      // emitted_at travels as emitted_at_ns (common/update_json.h).
      const name = field === 'emitted_at' ? 'emitted_at_ns' : field;
      assert.match(envelope, new RegExp(`\\n\\s*${name}\\??:`), name);
    }
    for (const [enumName, prefix] of [
             ['RunStatus', 'RUN_STATUS_'], ['Outcome', 'OUTCOME_'],
             ['TimeoutAction', 'TIMEOUT_ACTION_']]) {
      const values = [
        ...proto.match(new RegExp(`enum ${enumName} \\{([^}]*)\\}`))[1].matchAll(
            new RegExp(`${prefix}(\\w+)\\s*=`, 'g'))
      ].map((m) => m[1].toLowerCase());
      const type = dts.match(new RegExp(`export type ${enumName} =([^;]*);`))[1];
      assert.deepEqual([...type.matchAll(/'(\w+)'/g)].map((m) => m[1]), values, enumName);
    }
  });
});

describe('docs/CLIENT.md', () => {
  test('shows gateway/web/minimal.html as it is', () => {
    const doc = readFileSync(new URL('../../../docs/CLIENT.md', import.meta.url), 'utf8');
    const page =
        readFileSync(new URL('../../../gateway/web/minimal.html', import.meta.url), 'utf8');
    assert.ok(
        doc.includes('```html\n' + page + '```\n'),
        'the page in docs/CLIENT.md differs from minimal.html');
  });
});

describe('batches and compressed payloads', () => {
  test('a batch is split into its updates; replayed seqs inside are dropped', async () => {
    const updates = makeRun(RID, 12);
    let text = sseText(RID, updates.slice(0, 6), {batchEvery: 3, heartbeats: false});
    text = text.slice(0, text.indexOf('event: done'));
    // A second batch overlapping the first (seq 5..9), then the rest.
    text += `id: ${RID}:9\nevent: batch\ndata: ${
        JSON.stringify({type: 'batch', request_id: RID, updates: updates.slice(4, 9)})}\n\n`;
    text +=
        sseText(RID, updates, {after: 9, heartbeats: false}).split('\n\n').slice(2).join('\n\n');
    const fetch = recordingFetch((call) => chunkedResponse([text], {signal: call.signal}));
    const run = startRun('q', {transport: 'fetch', fetch, watchdog: false});
    const {seen} = consumer(run);
    await run.finished;
    assert.deepEqual(seen, range(1, 12));
    assert.equal(run.duplicates, 2);
    assert.equal(run.lastSeq, 12);
  });

  test('gzip payloads are inflated in stream order, inside batches too', async () => {
    const updates = makeRun(RID, 20).map(
        (u) =>
            (u.type === 'partial_result' ? {...u, result: {part: 'x'.repeat(3000), seq: u.seq}} :
                                           u));
    const wire =
        updates.map((u) => (u.type === 'partial_result' || u.seq === 3 ? compressed(u) : u));
    const text = sseText(RID, wire, {batchEvery: 2, heartbeats: false});
    const fetch = recordingFetch((call) => chunkedResponse([text], {signal: call.signal}));
    const run = startRun('q', {transport: 'fetch', fetch, watchdog: false, compress: true});
    const got = [];
    run.onUpdate((u) => got.push(u));
    await run.finished;
    const seqUpdates = got.filter((u) => Number.isInteger(u.seq));
    assert.deepEqual(seqUpdates, updates);
    assert.equal(run.state.results.Synthetic.part, 'x'.repeat(3000));
  });

  test('an undecodable payload is reported and skipped; the next seqs follow', async () => {
    const updates = makeRun(RID, 6);
    const bad =
        {type: 'partial_result', seq: 3, compressed: true, encoding: 'gzip', data: 'bm90IGd6aXA='};
    const wire = updates.map((u) => (u.seq === 3 ? bad : u));
    const fetch =
        recordingFetch((call) => chunkedResponse([sseText(RID, wire)], {signal: call.signal}));
    const errors = [];
    const run = startRun(
        'q', {transport: 'fetch', fetch, watchdog: false, onError: (e, d) => errors.push(d.where)});
    const {seen} = consumer(run);
    await run.finished;
    assert.deepEqual(seen, [1, 2, 4, 5, 6]);
    assert.deepEqual(errors, ['inflate']);
  });

  test(
      'an event whose data is unreadable is reported; its id still moves the resume point',
      async () => {
        const clock = fakeClock();
        const updates = makeRun(RID, 6);
        const fetch = recordingFetch((call) => {
          const after = afterOf(call.url) || 0;
          let text = sseText(RID, updates, {after, heartbeats: false});
          let endWith = 'eof';
          if (call.index === 0) {
            text = `${text.slice(0, text.indexOf(`id: ${RID}:3`))}id: ${
                RID}:3\nevent: message\ndata: {broken\n\n`;
            endWith = 'error';
          }
          return chunkedResponse([text], {signal: call.signal, endWith});
        });
        const errors = [];
        const run = startRun('q', {
          transport: 'fetch',
          fetch,
          timers: clock.timers,
          random: () => 0.5,
          onError: (e, d) => errors.push(d.where)
        });
        const {seen} = consumer(run);
        let finished = null;
        run.finished.then((r) => {
          finished = r;
        });
        await clock.runUntil(() => finished !== null);
        assert.deepEqual(errors, ['decode']);
        assert.equal(afterOf(fetch.calls[1].url), 3);
        assert.deepEqual(seen, [1, 2, 4, 5, 6]);
      });

  test(
      'types: other kinds are not delivered even by a gateway that ignores the filter',
      async () => {
        const updates = makeRun(RID, 30);
        const fetch = recordingFetch(
            (call) => chunkedResponse([sseText(RID, updates)], {signal: call.signal}));
        const run = startRun(
            'q',
            {transport: 'fetch', fetch, watchdog: false, types: ['partial_result', 'complete']});
        const {events} = consumer(run);
        await run.finished;
        assert.deepEqual(
            [...new Set(events)].sort(),
            ['complete', 'connected', 'done', 'error', 'partial_result']);
        assert.equal(run.lastSeq, 30);
      });
});

describe('URLs and POST bodies', () => {
  test('GET through EventSource carries every stream option', async () => {
    const clock = fakeClock();
    const Source = MockEventSource.from('', {timers: clock.timers});
    const run = startRun('risk of ACC-1042', {
      EventSource: Source,
      timers: clock.timers,
      baseUrl: 'http://gw:8080',
      specialists: ['RiskAnalyst', 'DataAnalyst'],
      types: ['progress', 'partial_result'],
      batchMax: 8,
      batchMs: 50,
      compress: true,
      onDisconnect: 'cancel',
      runOptions: {depth: 2},
    });
    await clock.advance(0);
    const url = new URL(Source.opened[0].url);
    assert.equal(url.origin + url.pathname, 'http://gw:8080/api/chat/stream');
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      message: 'risk of ACC-1042',
      specialists: 'RiskAnalyst,DataAnalyst',
      options: '{"depth":2}',
      on_disconnect: 'cancel',
      types: 'progress,partial_result',
      batch_max: '8',
      batch_ms: '50',
      compress: '1',
      heartbeat: 'event',
    });
    run.close();
  });

  test('POST sends them in the JSON body; a resume keeps them in the query', async () => {
    const clock = fakeClock();
    const updates = makeRun(RID, 8);
    const fetch = recordingFetch((call) => {
      const after = afterOf(call.url) || 0;
      const text = sseText(RID, updates, {after, heartbeats: false});
      const cut = call.index === 0 ? text.indexOf(`id: ${RID}:4`) : text.length;
      return chunkedResponse(
          [text.slice(0, cut)], {signal: call.signal, endWith: call.index === 0 ? 'error' : 'eof'});
    });
    const run = startRun('q', {
      method: 'POST',
      fetch,
      timers: clock.timers,
      random: () => 0.5,
      baseUrl: 'http://gw/',
      types: ['progress', 'complete'],
      batchMax: 4,
      batchMs: 20,
      compress: true,
      specialists: ['RiskAnalyst'],
    });
    let finished = null;
    run.finished.then((r) => {
      finished = r;
    });
    await clock.runUntil(() => finished !== null);
    const [post, resume] = fetch.calls;
    assert.equal(post.method, 'POST');
    assert.equal(post.url, 'http://gw/api/chat/stream');
    assert.equal(post.headers['Content-Type'], 'application/json');
    assert.deepEqual(JSON.parse(post.body), {
      message: 'q',
      specialists: ['RiskAnalyst'],
      types: ['progress', 'complete'],
      batch_max: 4,
      batch_ms: 20,
      compress: true,
    });
    assert.equal(resume.method, 'GET');
    assert.equal(
        resume.url,
        `http://gw/api/runs/${
            RID}/stream?after=3&types=progress%2Ccomplete&batch_max=4&batch_ms=20&compress=1`);
    assert.equal(resume.headers['Last-Event-ID'], `${RID}:3`);
  });

  test('a question too long for a GET URL goes as a POST', async () => {
    const fetch = recordingFetch(
        (call) => chunkedResponse([sseText(RID, makeRun(RID, 2))], {signal: call.signal}));
    class NeverUsed {
      constructor() {
        assert.fail('EventSource used for a long question');
      }
    }
    const run = startRun('é'.repeat(2000), {EventSource: NeverUsed, fetch, watchdog: false});
    await run.finished;
    assert.equal(fetch.calls[0].method, 'POST');
    assert.equal(JSON.parse(fetch.calls[0].body).message, 'é'.repeat(2000));
  });

  test('attach follows from after=N and counts those seqs as seen', async () => {
    const fetch = recordingFetch(
        (call) => chunkedResponse(
            [sseText(RID, makeRun(RID, 9), {after: afterOf(call.url)})], {signal: call.signal}));
    const run = attach(RID, {after: 5, transport: 'fetch', fetch, watchdog: false});
    const {seen} = consumer(run);
    await run.finished;
    assert.equal(fetch.calls[0].url, `api/runs/${RID}/stream?after=5`);
    assert.deepEqual(seen, [6, 7, 8, 9]);
  });

  test('unknown types are refused before any request', () => {
    assert.throws(
        () => startRun('q', {types: ['progress', 'bogus'], fetch: () => {}}),
        /unknown update types: bogus/);
  });
});
