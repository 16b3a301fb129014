// Tests of the wire side of the client library, with Node's built-in runner:
// the SSE parser (gateway/web/sse_parser.js) on text cut anywhere, the event
// decoding (stream_decode.js: ids, batches, gzip), MockEventSource's playback
// of a recording (timing, speed, resume, end), and agentstream.d.ts kept in
// step with proto/agentstream/v1/update.proto.

import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {describe, test} from 'node:test';
import {gzipSync} from 'node:zlib';

import {MockEventSource, parseEventId, parseRecording, parseSse, SseParser, UPDATE_TYPES} from '../../../gateway/web/agentstream.js';
import {inflateUpdate, splitEvent} from '../../../gateway/web/stream_decode.js';

import {compressed, fakeClock, makeRun, sseText} from './agentstream_fakes.mjs';

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
