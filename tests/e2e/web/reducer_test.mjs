// Unit tests of the web client's pure reducer (gateway/web/reducer.js), run
// with Node's built-in test runner: `node --test tests/e2e/web/`.

import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {initialState, MAX_LOG_ENTRIES, phaseSteps, reduce, specialistList} from '../../../gateway/web/reducer.js';

const RID = 'req_4f1c9a';
const QUESTION = 'Assess the risk and AML compliance of account ACC-1042 over the last 6 months';

// Envelope fields as the gateway sends them; seq is dense from 1.
function stream(updates) {
  return updates.map(
      (u, i) => ({request_id: RID, seq: i + 1, emitted_at_ns: 1795000000000000000 + i, ...u}));
}

const SQL =
    'SELECT COUNT(*) AS n, SUM(amount) AS total FROM transactions WHERE account_id = ? AND ts >= ?';

// A realistic run of three specialists, interleaved as the orchestrator
// merges them live; RiskAnalyst reports a timeout and then an error.
const RUN = stream([
  {type: 'status', status: 'analyzing', message: 'Reading the question'},
  {
    type: 'thinking',
    agent: 'Orchestrator',
    thought: 'Needs risk and AML: three specialists.',
    visible: true
  },
  {type: 'thinking', agent: 'Orchestrator', thought: 'internal scoring detail', visible: false},
  {type: 'status', status: 'delegating', message: 'Delegating to 3 specialists'},
  {
    type: 'specialist_activated',
    specialist: 'DataAnalyst',
    task: 'Totals for ACC-1042',
    icon: '📊',
    display_name: 'Data Analyst'
  },
  {
    type: 'specialist_activated',
    specialist: 'RiskAnalyst',
    task: 'Risk of ACC-1042',
    icon: '⚖️',
    display_name: 'Risk Analyst'
  },
  {
    type: 'specialist_activated',
    specialist: 'ComplianceExpert',
    task: 'AML of ACC-1042',
    icon: '🛡️',
    display_name: 'Compliance Expert'
  },
  {
    type: 'progress',
    specialist: 'DataAnalyst',
    progress: 10,
    current_action: 'Running totals query',
    instance: 'host:50061'
  },
  {
    type: 'thinking',
    specialist: 'DataAnalyst',
    agent: 'DataAnalyst',
    thought: 'Scope is 6 months.',
    visible: true
  },
  {
    type: 'tool_call',
    specialist: 'DataAnalyst',
    tool: 'data_query',
    parameters: {sql: SQL, params: ['ACC-1042', '2026-05-01']}
  },
  {
    type: 'progress',
    specialist: 'ComplianceExpert',
    progress: 30,
    current_action: 'Structuring rule'
  },
  {
    type: 'partial_result',
    specialist: 'DataAnalyst',
    result: {query: 'totals', inflow: 100.5, outflow: 50}
  },
  {type: 'progress', specialist: 'RiskAnalyst', progress: 40, current_action: 'Volatility'},
  {type: 'timeout', specialist: 'RiskAnalyst', message: 'past soft deadline', action: 'continuing'},
  {
    type: 'partial_result',
    specialist: 'DataAnalyst',
    result: {query: 'trend', months: [{month: '2026-05'}]}
  },
  {
    type: 'partial_result',
    specialist: 'DataAnalyst',
    result: {query: 'totals', inflow: 120.5, outflow: 50, net: 70.5}
  },
  {type: 'progress', specialist: 'DataAnalyst', progress: 100, current_action: 'Done'},
  {type: 'specialist_complete', specialist: 'DataAnalyst', outcome: 'ok', duration_ms: 812},
  {
    type: 'synthesis',
    message: 'DataAnalyst reported',
    specialists_complete: ['DataAnalyst'],
    specialists_pending: ['RiskAnalyst', 'ComplianceExpert']
  },
  {
    type: 'error',
    specialist: 'RiskAnalyst',
    code: 'unavailable',
    message: 'connection reset',
    retryable: true
  },
  {type: 'specialist_complete', specialist: 'RiskAnalyst', outcome: 'failed', duration_ms: 2100},
  {type: 'progress', specialist: 'ComplianceExpert', progress: 100, current_action: 'Done'},
  {type: 'partial_result', specialist: 'ComplianceExpert', result: {query: 'structuring', hits: 4}},
  {type: 'specialist_complete', specialist: 'ComplianceExpert', outcome: 'ok', duration_ms: 1500},
  {
    type: 'synthesis',
    message: 'All reported',
    specialists_complete: ['DataAnalyst', 'ComplianceExpert'],
    specialists_pending: []
  },
  {type: 'status', status: 'synthesizing', message: 'Combining the findings'},
  {
    type: 'complete',
    outcome: 'partial',
    result: {
      answer: 'ACC-1042 moved 120.50 in; 4 structuring hits.',
      specialists: {DataAnalyst: {inflow: 120.5}},
      missing: ['RiskAnalyst']
    }
  },
]);

function run(updates, from = reduce(initialState(), {type: 'reset', question: QUESTION})) {
  return updates.reduce(reduce, from);
}

function deepFreeze(o) {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

describe('reduce', () => {
  test('reset starts a fresh run that is connecting', () => {
    const s = reduce(initialState(), {type: 'reset', question: QUESTION});
    assert.equal(s.question, QUESTION);
    assert.equal(s.connection, 'connecting');
    assert.equal(s.status, 'idle');
    assert.deepEqual(s.order, []);
  });

  test('connected records the request id and opens the connection', () => {
    const s = run([{type: 'connected', status: 'connected', request_id: RID}]);
    assert.equal(s.requestId, RID);
    assert.equal(s.connection, 'open');
  });

  test('a realistic run folds into the expected state', () => {
    const s = run([{type: 'connected', status: 'connected', request_id: RID}, ...RUN]);

    assert.equal(s.status, 'complete');
    assert.equal(s.outcome, 'partial');
    assert.equal(s.answer, 'ACC-1042 moved 120.50 in; 4 structuring hits.');
    assert.deepEqual(s.missing, ['RiskAnalyst']);
    assert.deepEqual(s.finalResult.specialists, {DataAnalyst: {inflow: 120.5}});
    assert.equal(s.lastSeq, RUN.length);
    assert.equal(s.eventCount, RUN.length + 1);

    // Specialists in activation order, with what each card shows.
    assert.deepEqual(s.order, ['DataAnalyst', 'RiskAnalyst', 'ComplianceExpert']);
    assert.deepEqual(specialistList(s).map((x) => x.name), s.order);
    const da = s.specialists.DataAnalyst;
    assert.equal(da.displayName, 'Data Analyst');
    assert.equal(da.icon, '📊');
    assert.equal(da.task, 'Totals for ACC-1042');
    assert.equal(da.progress, 100);
    assert.equal(da.currentAction, 'Done');
    assert.equal(da.instance, 'host:50061');
    assert.equal(da.outcome, 'ok');
    assert.equal(da.durationMs, 812);
    assert.deepEqual(da.thoughts.map((t) => t.text), ['Scope is 6 months.']);
    assert.equal(da.toolCalls.length, 1);
    assert.equal(da.toolCalls[0].tool, 'data_query');
    assert.equal(da.toolCalls[0].sql, SQL);
    assert.deepEqual(da.toolCalls[0].params, ['ACC-1042', '2026-05-01']);
    // A repeated query replaces its earlier partial result in place.
    assert.deepEqual(da.partials.map((p) => p.key), ['totals', 'trend']);
    assert.deepEqual(
        da.partials[0].result, {query: 'totals', inflow: 120.5, outflow: 50, net: 70.5});
    // The results map merges every partial result of a specialist.
    assert.equal(s.results.DataAnalyst.net, 70.5);
    assert.deepEqual(s.results.DataAnalyst.months, [{month: '2026-05'}]);
    assert.equal(s.results.ComplianceExpert.hits, 4);

    // Errors and timeouts land on the card they belong to.
    const ra = s.specialists.RiskAnalyst;
    assert.equal(ra.progress, 40);
    assert.equal(ra.outcome, 'failed');
    assert.deepEqual(
        ra.errors.map((e) => [e.code, e.message, e.retryable]),
        [['unavailable', 'connection reset', true]]);
    assert.deepEqual(
        ra.timeouts.map((t) => [t.action, t.message]), [['continuing', 'past soft deadline']]);
    assert.equal(s.specialists.ComplianceExpert.errors.length, 0);
    assert.deepEqual(s.errors.map((e) => e.specialist), ['RiskAnalyst']);

    // Orchestrator thinking stays off the cards; invisible thoughts are kept but marked.
    assert.deepEqual(
        s.orchestratorThoughts.map((t) => [t.text, t.visible]),
        [['Needs risk and AML: three specialists.', true], ['internal scoring detail', false]]);

    assert.deepEqual(
        s.synthesis,
        {message: 'All reported', complete: ['DataAnalyst', 'ComplianceExpert'], pending: []});
    assert.deepEqual(
        Object.keys(s.phases), ['analyzing', 'delegating', 'synthesizing', 'complete']);
  });

  test('the state moves through the phases in order while the run streams', () => {
    let s = run([]);
    const seen = [];
    for (const u of RUN) {
      s = reduce(s, u);
      if (seen[seen.length - 1] !== s.status) seen.push(s.status);
    }
    assert.deepEqual(seen, ['analyzing', 'delegating', 'synthesizing', 'complete']);
  });

  test('synthesis tracks complete and pending lists as specialists finish', () => {
    const upTo = RUN.findIndex((u) => u.type === 'synthesis');
    const s = run(RUN.slice(0, upTo + 1));
    assert.deepEqual(s.synthesis.complete, ['DataAnalyst']);
    assert.deepEqual(s.synthesis.pending, ['RiskAnalyst', 'ComplianceExpert']);
    assert.equal(s.answer, null);
    assert.equal(s.status, 'delegating');
  });

  test('never mutates the state or the update it is given', () => {
    let s = deepFreeze(run([]));
    for (const u of RUN) s = deepFreeze(reduce(s, deepFreeze(structuredClone(u))));
    assert.equal(s.status, 'complete');
  });

  test('an error or timeout sent twice (message and named event) counts once', () => {
    const err = RUN.find((u) => u.type === 'error');
    const s = run([...RUN.slice(0, RUN.indexOf(err) + 1), err]);
    assert.equal(s.specialists.RiskAnalyst.errors.length, 1);
    assert.equal(s.errors.length, 1);
    assert.equal(s.log.filter((e) => e.type === 'error').length, 1);

    const to = RUN.find((u) => u.type === 'timeout');
    const t = run([...RUN.slice(0, RUN.indexOf(to) + 1), to]);
    assert.equal(t.specialists.RiskAnalyst.timeouts.length, 1);
  });

  test('a gateway error without seq is shown once, as a run-level error', () => {
    // (A retryable `unavailable` or `slow_consumer` is not an error of the
    // run but a reconnect: session_test.mjs.)
    const gw = {
      type: 'error',
      request_id: RID,
      code: 'internal',
      message: 'orchestrator failed',
      retryable: false
    };
    const s = run([...RUN.slice(0, 5), gw, gw]);
    assert.deepEqual(s.errors.map((e) => [e.specialist, e.code]), [[null, 'internal']]);
    assert.equal(s.status, 'delegating');
  });

  test('partial results are named by query, part or a short rule', () => {
    const s = run(stream([
      {type: 'partial_result', specialist: 'RiskAnalyst', result: {part: 'volatility', cv: 0.5}},
      {
        type: 'partial_result',
        specialist: 'RiskAnalyst',
        result: {rule: 'amount > mean + 3 * stddev of the account own history', n: 1}
      },
      {type: 'partial_result', specialist: 'RiskAnalyst', result: {part: 'volatility', cv: 0.6}},
      {
        type: 'partial_result',
        specialist: 'ComplianceExpert',
        result: {rule: 'structuring', hits: 4}
      },
    ]));
    assert.deepEqual(
        s.specialists.RiskAnalyst.partials.map((p) => [p.key, p.titleField]),
        [['volatility', 'part'], ['result 2', null]]);
    assert.equal(s.specialists.RiskAnalyst.partials[0].result.cv, 0.6);
    assert.deepEqual(s.specialists.ComplianceExpert.partials.map((p) => p.key), ['structuring']);
  });

  test('progress is clamped to 0..100 and a non-number keeps the last value', () => {
    const s = run(stream([
      {type: 'progress', specialist: 'X', progress: 150},
      {type: 'progress', specialist: 'Y', progress: -5},
      {type: 'progress', specialist: 'Z', progress: 33.6},
      {type: 'progress', specialist: 'Z', progress: 'lots'},
    ]));
    assert.equal(s.specialists.X.progress, 100);
    assert.equal(s.specialists.Y.progress, 0);
    assert.equal(s.specialists.Z.progress, 34);
  });

  test('updates for a specialist never activated still get a card', () => {
    const s = run(stream([{type: 'progress', specialist: 'Synthetic', progress: 50}]));
    assert.deepEqual(s.order, ['Synthetic']);
    assert.equal(s.specialists.Synthetic.activated, false);
    assert.equal(s.specialists.Synthetic.displayName, 'Synthetic');
  });

  test('thinking by a specialist agent without the envelope field goes to its card', () => {
    const s = run(
        stream([{type: 'thinking', agent: 'RiskAnalyst', thought: 'HHI is high', visible: true}]));
    assert.equal(s.orchestratorThoughts.length, 0);
    assert.deepEqual(s.specialists.RiskAnalyst.thoughts.map((t) => t.text), ['HHI is high']);
  });

  test('done closes the connection and keeps the run status', () => {
    const s = run([...RUN, {type: 'done', status: 'complete', request_id: RID}]);
    assert.equal(s.connection, 'closed');
    assert.deepEqual(s.done, {status: 'complete'});
    assert.equal(s.status, 'complete');
  });

  test('done before any complete marks the run failed or cancelled', () => {
    const failed = run([...RUN.slice(0, 4), {type: 'done', status: 'failed', request_id: RID}]);
    assert.equal(failed.status, 'failed');
    const cancelled =
        run([...RUN.slice(0, 4), {type: 'done', status: 'cancelled', request_id: RID}]);
    assert.equal(cancelled.status, 'cancelled');
    const odd = run([...RUN.slice(0, 4), {type: 'done', status: 'weird', request_id: RID}]);
    assert.equal(odd.status, 'failed');
  });

  test('a cancelled complete ends the run as cancelled', () => {
    const s = run([
      ...RUN.slice(0, 8), {type: 'complete', seq: 9, outcome: 'cancelled', result: {answer: ''}}
    ]);
    assert.equal(s.status, 'cancelled');
    assert.equal(s.outcome, 'cancelled');
    assert.equal(s.answer, '');
  });

  test('a fatal transport error before any update fails the run with a message', () => {
    const s = run([{type: 'transport_error', fatal: true, message: 'gateway refused'}]);
    assert.equal(s.connection, 'error');
    assert.equal(s.status, 'failed');
    assert.deepEqual(
        s.errors.map((e) => [e.code, e.message, e.specialist]),
        [['connection', 'gateway refused', null]]);
  });

  test('a transient transport error means reconnecting, and is ignored after done', () => {
    const s = run([...RUN.slice(0, 3), {type: 'transport_error', fatal: false}]);
    assert.equal(s.connection, 'reconnecting');
    assert.equal(s.errors.length, 0);
    const after =
        run([...RUN, {type: 'done', status: 'complete'}, {type: 'transport_error', fatal: true}]);
    assert.equal(after.connection, 'closed');
    assert.equal(after.errors.length, 1);  // Only RiskAnalyst's.
  });

  test('stopped by the user marks an unfinished run cancelled', () => {
    const s = run(
        [...RUN.slice(0, 6), {type: 'stopped', cancelled: false, note: 'Cancel is not available'}]);
    assert.equal(s.status, 'cancelled');
    assert.equal(s.connection, 'closed');
    assert.deepEqual(s.stopped, {cancelled: false, note: 'Cancel is not available'});
  });

  test('unknown types and malformed updates do not throw', () => {
    let s = run(RUN.slice(0, 2));
    s = reduce(s, {type: 'batch', request_id: RID, seq: 3});
    s = reduce(s, null);
    s = reduce(s, 'text');
    s = reduce(s, {no: 'type'});
    s = reduce(
        s, {type: 'partial_result', seq: 4, specialist: 'DataAnalyst', result: 'not an object'});
    s = reduce(s, {type: 'tool_call', seq: 5, specialist: 'DataAnalyst', parameters: null});
    assert.deepEqual(
        s.log.map((e) => e.type), ['status', 'thinking', 'batch', 'partial_result', 'tool_call']);
    assert.equal(s.specialists.DataAnalyst.toolCalls[0].sql, null);
    assert.deepEqual(s.specialists.DataAnalyst.partials[0].result, {});
  });

  test('the event log keeps every update with its seq, type and specialist', () => {
    const s = run(RUN);
    assert.equal(s.log.length, RUN.length);
    assert.deepEqual(s.log.map((e) => e.seq), RUN.map((u) => u.seq));
    assert.equal(s.log[4].type, 'specialist_activated');
    assert.equal(s.log[4].specialist, 'DataAnalyst');
    assert.equal(s.log[4].data, RUN[4]);
  });

  test('the event log is bounded and counts what it dropped', () => {
    const many = stream(Array.from(
        {length: MAX_LOG_ENTRIES + 25},
        (_, i) => ({type: 'progress', specialist: 'Synthetic', progress: i % 101})));
    const s = run(many);
    assert.equal(s.log.length, MAX_LOG_ENTRIES);
    assert.equal(s.logDropped, 25);
    assert.equal(s.log[0].seq, 26);
    assert.equal(s.eventCount, MAX_LOG_ENTRIES + 25);
  });
});

describe('phaseSteps', () => {
  const states = (s) => phaseSteps(s).map((p) => `${p.phase}:${p.state}`);

  test('all pending before the first status', () => {
    assert.deepEqual(
        states(run([])),
        ['analyzing:pending', 'delegating:pending', 'synthesizing:pending', 'complete:pending']);
  });

  test('earlier phases done, the current one active', () => {
    assert.deepEqual(
        states(run(RUN.slice(0, 5))),
        ['analyzing:done', 'delegating:active', 'synthesizing:pending', 'complete:pending']);
  });

  test('all done when complete', () => {
    assert.deepEqual(
        states(run(RUN)),
        ['analyzing:done', 'delegating:done', 'synthesizing:done', 'complete:done']);
  });

  test('the current phase shows failed when the run fails there', () => {
    const s = run([...RUN.slice(0, 5), {type: 'done', status: 'failed'}]);
    assert.deepEqual(
        states(s),
        ['analyzing:done', 'delegating:failed', 'synthesizing:pending', 'complete:pending']);
    const early = run([{type: 'transport_error', fatal: true}]);
    assert.equal(phaseSteps(early)[0].state, 'failed');
  });
});
