// Unit tests of the React hook's pure parts (gateway/web/react/hook_state.js:
// what it follows, its status, its reducer), with Node's built-in runner and
// no React; the hook itself runs in Chromium (tests/e2e/react/react_e2e.py).
// The reducer is driven by a real AgentStream playing a run through
// MockEventSource, the way useAgentStream wires them.

import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {MockEventSource, startRun} from '../../../gateway/web/agentstream.js';
import {appendBounded, HOOK_DEFAULTS, HOOK_STATUSES, hookReducer, hookStatus, hookTarget, initialHookState, libraryOptions, maxUpdatesOf,} from '../../../gateway/web/react/hook_state.js';

const RID = 'req_react1';
const QUESTION = 'Assess the risk and AML compliance of account ACC-1042 over the last 6 months';

// Updates go out as `message` events (no event line), as the gateway sends
// them (docs/GATEWAY.md "The wire").
function sse(events) {
  return events
      .map(
          ({event, id, data}) => `${id ? `id: ${id}\n` : ''}${
              event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`)
      .join('');
}

// A short run: three specialists' worth of updates on one specialist.
function recording(extra = 0) {
  const updates = [
    {type: 'status', status: 'analyzing', message: 'Reading'},
    {
      type: 'specialist_activated',
      specialist: 'DataAnalyst',
      display_name: 'Data Analyst',
      task: 't'
    },
    {type: 'progress', specialist: 'DataAnalyst', progress: 50, current_action: 'querying'},
  ];
  for (let i = 0; i < extra; i++) {
    updates.push({type: 'thinking', agent: 'DataAnalyst', thought: `step ${i}`, visible: true});
  }
  updates.push(
      {type: 'progress', specialist: 'DataAnalyst', progress: 100, current_action: 'done'},
      {type: 'specialist_complete', specialist: 'DataAnalyst', outcome: 'ok'},
      {type: 'complete', outcome: 'ok', result: {answer: 'Risk is high.'}});
  const events =
      [{event: 'connected', data: {type: 'connected', request_id: RID, status: 'started'}}];
  updates.forEach((u, i) => {
    events.push({id: `${RID}:${i + 1}`, data: {...u, request_id: RID, seq: i + 1}});
  });
  events.push({event: 'done', data: {type: 'done', status: 'complete'}});
  return {text: sse(events), n: updates.length};
}

// Wires a stream to the hook reducer exactly as useAgentStream does.
function drive(stream, target, max) {
  let hs = hookReducer(initialHookState(target), {type: 'start', target});
  const key = target.key;
  const statuses = [];
  stream.onUpdate((update) => {
    hs = hookReducer(hs, {type: 'update', key, update, max});
  });
  stream.onState((state) => {
    hs = hookReducer(hs, {type: 'state', key, state});
  });
  stream.onStatus((status) => {
    hs = hookReducer(hs, {type: 'status', key, status, state: stream.state});
    statuses.push(hs.status);
  });
  return {get: () => hs, statuses};
}

describe('hookTarget', () => {
  test('a question, a run id (option or object), or idle', () => {
    assert.equal(hookTarget(QUESTION).kind, 'question');
    assert.equal(hookTarget(QUESTION).question, QUESTION);
    assert.deepEqual(
        (({kind, runId, after}) =>
             ({kind, runId, after}))(hookTarget(null, {runId: RID, after: 7})),
        {kind: 'run', runId: RID, after: 7});
    assert.equal(hookTarget({runId: RID}).kind, 'run');
    assert.equal(hookTarget({runId: RID}).after, 0);
    // options.runId wins over a question.
    assert.equal(hookTarget(QUESTION, {runId: RID}).kind, 'run');
    for (const nothing of [null, undefined, '', '   ', {runId: ''}, 42]) {
      assert.equal(hookTarget(nothing).kind, 'idle', String(nothing));
    }
    assert.equal(hookTarget(null, {after: -3, runId: RID}).after, 0);
  });

  test('the key changes with the question, the run, after and restartKey only', () => {
    const a = hookTarget(QUESTION, {maxUpdates: 10}).key;
    assert.equal(hookTarget(QUESTION, {maxUpdates: 20, compress: true}).key, a);
    assert.notEqual(hookTarget(QUESTION + '?').key, a);
    assert.notEqual(hookTarget(QUESTION, {restartKey: 1}).key, a);
    assert.notEqual(
        hookTarget(QUESTION, {restartKey: 1}).key, hookTarget(QUESTION, {restartKey: 2}).key);
    assert.notEqual(
        hookTarget(null, {runId: RID}).key, hookTarget(null, {runId: RID, after: 3}).key);
    assert.equal(hookTarget(null, {runId: RID}).key, hookTarget({runId: RID}).key);
  });
});

describe('options', () => {
  test('the hook keeps its own options from the library', () => {
    const on = {progress: () => {}};
    assert.deepEqual(
        libraryOptions({maxUpdates: 5, runId: RID, after: 2, restartKey: 1, compress: true, on}),
        {compress: true, on});
    assert.equal(maxUpdatesOf({}), HOOK_DEFAULTS.maxUpdates);
    assert.equal(maxUpdatesOf({maxUpdates: 3}), 3);
    for (const bad of [0, -1, 2.5, '10', null]) assert.equal(maxUpdatesOf({maxUpdates: bad}), 500);
  });
});

describe('hookStatus', () => {
  test('maps every library status, and a closed stream by the run', () => {
    assert.equal(hookStatus('connecting', null), 'connecting');
    assert.equal(hookStatus('open', null), 'streaming');
    assert.equal(hookStatus('reconnecting', null), 'reconnecting');
    assert.equal(hookStatus('failed', {status: 'analyzing'}), 'error');
    assert.equal(hookStatus('closed', {status: 'complete'}), 'done');
    assert.equal(hookStatus('closed', {status: 'cancelled'}), 'cancelled');
    assert.equal(hookStatus('closed', {status: 'failed'}), 'error');
    assert.equal(hookStatus(undefined, null), 'idle');
    for (const s of ['connecting', 'open', 'reconnecting', 'failed', 'closed', null]) {
      assert.ok(HOOK_STATUSES.includes(hookStatus(s, {status: 'complete'})), String(s));
    }
  });
});

describe('appendBounded', () => {
  test('keeps the newest max items, in order', () => {
    let list = [];
    for (let i = 1; i <= 7; i++) list = appendBounded(list, i, 3);
    assert.deepEqual(list, [5, 6, 7]);
    const before = [1, 2];
    assert.deepEqual(appendBounded(before, 3, 3), [1, 2, 3]);
    assert.deepEqual(before, [1, 2], 'never mutates');
    assert.deepEqual(appendBounded([1, 2, 3], 4, 1), [4]);
  });
});

describe('hookReducer', () => {
  test('starts idle or connecting; a stale key changes nothing', () => {
    assert.equal(initialHookState(hookTarget(null)).status, 'idle');
    const t = hookTarget(QUESTION);
    const hs = initialHookState(t);
    assert.equal(hs.status, 'connecting');
    assert.equal(hs.state.question, QUESTION);
    assert.equal(hookReducer(hs, {type: 'update', key: 'old', update: {type: 'x'}, max: 5}), hs);
    assert.equal(hookReducer(hs, {type: 'status', key: 'old', status: 'failed'}), hs);
    // A second start of the same target (StrictMode's second effect) keeps it.
    assert.equal(hookReducer(hs, {type: 'start', target: t}), hs);
    const run = initialHookState(hookTarget(null, {runId: RID}));
    assert.equal(run.state.requestId, RID);
  });

  test('a run played through the library: status done, the state, updates bounded', async () => {
    const {text, n} = recording(20);
    const Source = MockEventSource.from(text, {intervalMs: 0});
    const target = hookTarget(QUESTION);
    const stream = startRun(QUESTION, {EventSource: Source, watchdog: false});
    const max = 10;
    const hook = drive(stream, target, max);
    await stream.finished;
    const hs = hook.get();
    assert.equal(hs.status, 'done');
    assert.deepEqual(hook.statuses, ['connecting', 'streaming', 'done']);
    assert.equal(hs.state.status, 'complete');
    assert.equal(hs.state.answer, 'Risk is high.');
    assert.equal(hs.state.specialists.DataAnalyst.progress, 100);
    // connected + n updates + done were delivered; the newest `max` are kept.
    assert.equal(hs.updates.length, max);
    assert.equal(hs.updatesDropped, n + 2 - max);
    assert.equal(hs.updates.at(-1).type, 'done');
    assert.equal(hs.updates.at(-2).type, 'complete');
    assert.deepEqual(
        hs.updates.slice(0, -1).map((u) => u.seq),
        [...Array(max - 1).keys()].map((i) => n - max + 2 + i));
  });

  test('a connection cut twice: reconnecting, then done, each seq once', async () => {
    const {text, n} = recording(5);
    const Source = MockEventSource.from(text, {intervalMs: 0, cuts: [3, 6]});
    const stream = startRun(QUESTION, {
      EventSource: Source,
      watchdog: false,
      retry: {initialMs: 1, maxMs: 2, jitter: 0},
    });
    const hook = drive(stream, hookTarget(QUESTION), 500);
    await stream.finished;
    const hs = hook.get();
    assert.equal(Source.opened.length, 3);
    assert.ok(hook.statuses.includes('reconnecting'), hook.statuses.join(','));
    assert.equal(hs.status, 'done');
    const seqs = hs.updates.filter((u) => Number.isInteger(u.seq)).map((u) => u.seq);
    assert.deepEqual(seqs, [...Array(n).keys()].map((i) => i + 1));
  });

  test('a stream closed before it connects (StrictMode) sends nothing', async () => {
    const {text} = recording();
    const Source = MockEventSource.from(text, {intervalMs: 0});
    const first = startRun(QUESTION, {EventSource: Source, watchdog: false});
    first.close();  // the first effect's cleanup, in the same task
    const second = startRun(QUESTION, {EventSource: Source, watchdog: false});
    const hook = drive(second, hookTarget(QUESTION), 500);
    await Promise.all([first.finished, second.finished]);
    assert.equal(Source.opened.length, 1);
    assert.equal(hook.get().status, 'done');
  });

  test('a cancelled ending is status cancelled; a failed start is error', async () => {
    const events = [
      {event: 'connected', data: {type: 'connected', request_id: RID, status: 'started'}},
      {
        id: `${RID}:1`,
        data: {type: 'complete', request_id: RID, seq: 1, outcome: 'cancelled', result: {}}
      },
      {event: 'done', data: {type: 'done', status: 'cancelled'}},
    ];
    const Source = MockEventSource.from(sse(events), {intervalMs: 0});
    const stream = startRun(QUESTION, {EventSource: Source, watchdog: false});
    const hook = drive(stream, hookTarget(QUESTION), 500);
    await stream.finished;
    assert.equal(hook.get().status, 'cancelled');

    const Empty = MockEventSource.from('', {intervalMs: 0});
    const failing = startRun(QUESTION, {EventSource: Empty, watchdog: false});
    const hook2 = drive(failing, hookTarget(QUESTION), 500);
    await failing.finished;
    assert.equal(hook2.get().status, 'error');
  });
});
