// AG-UI's own client (@ag-ui/client's HttpAgent, unchanged) against the
// gateway's POST /api/ag-ui (docs/PROTOCOLS.md, "AG-UI"): its verifier
// accepts every stream, the final state holds every specialist at 100 %, the
// answer is our `complete`'s, a run cut mid-way and resumed (Last-Event-ID
// from the events' metadata) ends in the same state as an uncut reading,
// the protobuf framing reads the same run, a DELETE ends a run cancelled,
// and bad input is a 400.
import {HttpAgent} from '@ag-ui/client';

import {AUTH, BASE, EXPECTED_SPECIALISTS, QUESTION, TOKEN, check, log, main,
        ourComplete, slowRun, waitFor} from './dialect_support.mjs';

const URL_ = `${BASE}/api/ag-ui`;
const PROTO = 'application/vnd.ag-ui.event+proto';
// The client warns for what it strips; nothing we send should be stripped.
process.env.SUPPRESS_TRANSFORMATION_WARNINGS = '';

let nextId = 0;
function newAgent(question, headers = {}, Agent = HttpAgent) {
  nextId += 1;
  return new Agent({
    url: URL_, threadId: `thread-${nextId}`, headers: {...AUTH, ...headers},
    initialMessages: [{id: `u${nextId}`, role: 'user', content: question}],
    initialState: {},
  });
}

// Runs `agent` to its end, recording its events; rejects on any verifier
// or parse failure (runAgent rejects then).
async function run(agent, forwardedProps = {}, onEvent = () => {}) {
  const events = [];
  const {result} = await agent.runAgent({forwardedProps}, {
    onEvent: ({event}) => {
      events.push(event);
      onEvent(event, agent);
    },
  });
  return {events, result};
}

function types(events) {
  return events.map((e) => e.type);
}

function assistantTexts(agent) {
  return agent.messages.filter((m) => m.role === 'assistant' && m.content)
      .map((m) => m.content);
}

class ProtoAgent extends HttpAgent {
  requestInit(input) {
    const init = super.requestInit(input);
    init.headers = {...init.headers, Accept: PROTO};
    return init;
  }
}

async function answered() {
  log('1. ACC-1042 through HttpAgent');
  const agent = newAgent(QUESTION);
  const {events, result} = await run(agent);
  const t = types(events);
  check(t[0] === 'RUN_STARTED' && t[t.length - 1] === 'RUN_FINISHED',
        `the stream runs RUN_STARTED .. RUN_FINISHED (${t.length} events)`);
  for (const kind of ['STATE_SNAPSHOT', 'STATE_DELTA', 'STEP_STARTED', 'STEP_FINISHED',
                      'TOOL_CALL_START', 'TOOL_CALL_ARGS', 'TOOL_CALL_END', 'TOOL_CALL_RESULT',
                      'REASONING_MESSAGE_CONTENT', 'TEXT_MESSAGE_CONTENT']) {
    check(t.includes(kind), `the stream holds ${kind}`);
  }
  const state = agent.state;
  check(state.status === 'complete', `final state status complete (${state.status})`);
  for (const name of EXPECTED_SPECIALISTS) {
    const s = state.specialists[name];
    check(s && s.progress === 100 && s.outcome === 'ok',
          `${name} at 100 %, outcome ok in the final state`);
  }
  const steps = events.filter((e) => e.type === 'STEP_STARTED').map((e) => e.stepName);
  check(EXPECTED_SPECIALISTS.every((n) => steps.includes(n)), 'a step per specialist');
  const ours = await ourComplete(state.runId);
  check(typeof ours.result.answer === 'string' && ours.result.answer.length > 0,
        'our complete holds an answer');
  check(state.answer === ours.result.answer, 'the state\'s answer is our complete\'s');
  const texts = assistantTexts(agent);
  check(texts.length === 1 && texts[0] === ours.result.answer,
        'one assistant text message: our complete\'s answer');
  check(result && result.answer === ours.result.answer, 'RUN_FINISHED.result is our result');
  const tools = agent.messages.filter((m) => m.role === 'tool');
  const calls = events.filter((e) => e.type === 'TOOL_CALL_START').length;
  check(tools.length > 0 && tools.length <= calls, `tool results (${tools.length} of ${calls} calls)`);
  return state;
}

async function cutAndResumed() {
  log('2. a run cut mid-way and resumed with Last-Event-ID');
  const agent = newAgent('Run a synthetic load test and stream every update');
  let lastId = null;
  let deltas = 0;
  const first = await run(agent, slowRun(40, 10), (event, a) => {
    lastId = event.metadata && event.metadata.lastEventId || lastId;
    if (event.type === 'STATE_DELTA') deltas += 1;
    if (deltas === 8) a.abortRun();
  });
  const t = types(first.events);
  check(!t.includes('RUN_FINISHED'), `the first stream was cut before its end (${t.length} events)`);
  check(/^run_[0-9a-f]+:\d+$/.test(lastId), `the events carry our resume point (${lastId})`);
  const runId = lastId.split(':')[0];
  check(agent.state.runId === runId, 'the state names the same run');
  const progressAtCut = agent.state.specialists.Synthetic.progress;
  check(progressAtCut < 100, `cut mid-way (Synthetic at ${progressAtCut} %)`);

  agent.headers = {...agent.headers, 'Last-Event-ID': lastId};
  const second = await run(agent, slowRun(40, 10));
  const t2 = types(second.events);
  check(t2[0] === 'RUN_STARTED' && t2[1] === 'STATE_SNAPSHOT',
        'the resumed stream opens with RUN_STARTED and a STATE_SNAPSHOT');
  check(t2[t2.length - 1] === 'RUN_FINISHED', 'the resumed stream ends with RUN_FINISHED');
  check(second.events[1].snapshot.specialists.Synthetic.progress >= progressAtCut,
        'the snapshot holds the state at the cut');

  // The reference: the whole run read again from its start.
  const reference = newAgent('ignored', {'Last-Event-ID': `${runId}:0`});
  await run(reference);
  check(JSON.stringify(agent.state) === JSON.stringify(reference.state),
        'cut + resumed ends in the same state as an uncut reading');
  check(agent.state.specialists.Synthetic.progress === 100, 'Synthetic at 100 %');
  const texts = assistantTexts(agent);
  check(texts.length === 1 && texts[0] === (await ourComplete(runId)).result.answer,
        'the answer once, our complete\'s');
}

async function protobufFraming(expected) {
  log('3. the protobuf framing (Accept: application/vnd.ag-ui.event+proto)');
  const agent = newAgent(QUESTION, {}, ProtoAgent);
  const {events} = await run(agent);
  const t = types(events);
  check(t[0] === 'RUN_STARTED' && t[t.length - 1] === 'RUN_FINISHED',
        `the client's protobuf parser read the run (${t.length} events)`);
  check(events.every((e) => e.metadata === undefined ||
                            /^run_[0-9a-f]+:\d+$/.test(e.metadata.lastEventId)),
        'each event\'s metadata carries the resume point');
  for (const name of EXPECTED_SPECIALISTS) {
    check(agent.state.specialists[name].progress === 100, `${name} at 100 % (protobuf)`);
  }
  check(agent.state.answer === (await ourComplete(agent.state.runId)).result.answer,
        'the answer is our complete\'s (protobuf)');
  check(Object.keys(agent.state).sort().join() === Object.keys(expected).sort().join(),
        'the same state shape as over SSE');
}

async function cancelled() {
  log('4. DELETE ends the run: RUN_FINISHED, outcome cancelled');
  const agent = newAgent('Run a synthetic load test and stream every update');
  let deleted = false;
  const {events} = await run(agent, slowRun(100, 10), (event, a) => {
    if (!deleted && event.type === 'STATE_DELTA' && a.state.runId &&
        a.state.specialists.Synthetic && a.state.specialists.Synthetic.progress >= 5) {
      deleted = true;
      fetch(`${BASE}/api/runs/${a.state.runId}`, {method: 'DELETE', headers: AUTH})
          .then((r) => log(`DELETE: ${r.status}`));
    }
  });
  const last = events[events.length - 1];
  check(deleted, 'the run was deleted mid-way');
  check(last.type === 'RUN_FINISHED' && last.outcome && last.outcome.type === 'cancelled',
        `the stream ends RUN_FINISHED, outcome cancelled (${JSON.stringify(last.outcome)})`);
  check(agent.state.status === 'cancelled', 'the final state says cancelled');
}

async function specialistFailed() {
  log('5. a specialist that fails: its error in the state; the run ends partial');
  const agent = newAgent('Run a synthetic load test and stream every update');
  const props = slowRun(20, 50);
  props.options.fail_after = 3;
  const {events, result} = await run(agent, props);
  const last = events[events.length - 1];
  // Our outcome `partial` (an answer that names what is missing) is a
  // finished AG-UI run; only a run that fails as a whole is a RUN_ERROR.
  check(last.type === 'RUN_FINISHED' && agent.state.outcome === 'partial',
        `the stream ends RUN_FINISHED, outcome partial (${last.type} ${agent.state.outcome})`);
  check(result && Array.isArray(result.missing) &&
            JSON.stringify(result.missing).includes('Synthetic'),
        `RUN_FINISHED.result names Synthetic as missing (${JSON.stringify(result && result.missing)})`);
  const errors = agent.state.errors.filter((e) => e.specialist === 'Synthetic');
  check(errors.length >= 1, `Synthetic's error is in the state (${JSON.stringify(errors[0])})`);
  check(agent.state.specialists.Synthetic.outcome === 'failed', 'its outcome failed');
  check(Object.keys(agent.state.results.Synthetic || {}).length > 0,
        'its partial results before the failure are kept');
}

async function badInput() {
  log('6. bad input: 400 with a JSON body');
  const post = (body, headers = {}) => fetch(URL_, {
    method: 'POST', headers: {'Content-Type': 'application/json', ...AUTH, ...headers},
    body: typeof body === 'string' ? body : JSON.stringify(body)});
  for (const [what, body] of [
    ['not JSON', '{'],
    ['no user message', {threadId: 't', runId: 'r', messages: [{id: 'a', role: 'assistant', content: 'x'}]}],
    ['messages not an array', {messages: 'hi'}],
    ['threadId not a string', {threadId: 7, messages: [{id: 'u', role: 'user', content: 'x'}]}],
    ['a specialist name over the limit', {messages: [{id: 'u', role: 'user', content: 'x'}],
                                             forwardedProps: {specialists: ['x'.repeat(300)]}}],
  ]) {
    const r = await post(body);
    const j = await r.json().catch(() => null);
    check(r.status === 400 && j && j.error, `${what}: 400 ${j && j.error}`);
  }
  const r = await post({messages: [{id: 'u', role: 'user', content: 'x'}]},
                       {'Last-Event-ID': 'not an id'});
  check(r.status === 400, 'a malformed Last-Event-ID: 400');
  const agent = newAgent('');
  let threw = false;
  try {
    await run(agent);
  } catch (e) {
    threw = /400/.test(String(e.message));
  }
  check(threw, 'HttpAgent rejects an empty question with the 400');
}

async function authenticated() {
  log('7. --auth: no token is a 401; HttpAgent rejects with it');
  const r = await fetch(URL_, {
    method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({messages: [{id: 'u', role: 'user', content: 'x'}]})});
  check(r.status === 401 && r.headers.get('www-authenticate'),
        `without a token: 401 with WWW-Authenticate (${r.status})`);
  const agent = new HttpAgent({
    url: URL_, initialMessages: [{id: 'u', role: 'user', content: QUESTION}]});
  let threw = false;
  try {
    await agent.runAgent();
  } catch (e) {
    threw = /401/.test(String(e.message));
  }
  check(threw, 'HttpAgent without the token rejects with the 401');
}

main('ag_ui_client_test', async () => {
  await waitFor('the gateway', async () => (await fetch(`${BASE}/healthz`)).ok);
  const state = await answered();
  await cutAndResumed();
  await protobufFraming(state);
  await cancelled();
  await specialistFailed();
  await badInput();
  if (TOKEN) await authenticated();
});
