// A2A (docs/PROTOCOLS.md, "A2A") with @a2a-js/sdk's own client, unchanged:
// it reads the agent card (the specialists as skills), streams the ACC-1042
// question to TASK_STATE_COMPLETED with the answer as an artifact, reads the
// task back, cancels a slow task mid-run, cuts a third one's stream and
// resubscribes (nothing lost, nothing twice), and asks for an unknown task.
// The v0.3 names (tasks/get, tasks/resubscribe) are checked with plain
// JSON-RPC. Every run is compared with the same run on our own wire.
import {ClientFactory} from '@a2a-js/sdk/client';
import {Role, TaskState} from '@a2a-js/sdk';
import {randomUUID} from 'node:crypto';
import {BASE, QUESTION, EXPECTED_SPECIALISTS, slowRun, check, log, waitFor,
        ourUpdates, ourComplete, main} from './dialect_support.mjs';

const STREAM_TIMEOUT_MS = 120000;

function message(text, {contextId, run} = {}) {
  const m = {messageId: randomUUID(), role: Role.ROLE_USER,
             parts: [{content: {$case: 'text', value: text}}]};
  if (contextId) m.contextId = contextId;
  // How to run it (which specialists, their options): our metadata.
  if (run) m.metadata = {agentstream: run};
  return {message: m};
}

// JSON with its object keys sorted: equal values, equal text.
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const partValue = (p) => p.content?.value;
const partials = (updates) =>
  updates.filter((u) => u.type === 'partial_result').map((u) => canon(u.result));

// Every event of a stream, until the server closes it.
async function collect(iterable, onEvent = () => {}) {
  const events = [];
  for await (const ev of iterable) {
    events.push(ev.payload);
    onEvent(ev.payload, events);
  }
  return events;
}

function withTimeout(ms) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  return {signal: ctl.signal, ctl, done: () => clearTimeout(timer)};
}

async function rpc(method, params) {
  const r = await fetch(`${BASE}/api/a2a`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({jsonrpc: '2.0', id: 'v03', method, params}),
  });
  return {status: r.status, type: r.headers.get('content-type'), text: await r.text()};
}

function sseData(text) {
  return text.split('\n\n').map((b) => b.split('\n').filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, '')).join('\n')).filter((d) => d).map((d) => JSON.parse(d));
}

main('a2a_client_test', async () => {
  const client = await new ClientFactory().createFromUrl(BASE);

  // The card.
  const card = await client.getAgentCard();
  log(`card: ${card.name}, skills ${card.skills.map((s) => s.id).join(', ')}`);
  check(card.supportedInterfaces.some((i) => i.url === `${BASE}/api/a2a` &&
                                          i.protocolBinding === 'JSONRPC'),
        'the card names the JSON-RPC endpoint at this gateway');
  check(card.capabilities.streaming === true, 'the card says it streams');
  for (const name of [...EXPECTED_SPECIALISTS, 'Synthetic']) {
    check(card.skills.some((s) => s.id === name && s.description),
          `the card has the skill ${name}`);
  }

  // 1. The question, streamed to COMPLETED, the answer as an artifact.
  const contextId = randomUUID();
  const t1 = withTimeout(STREAM_TIMEOUT_MS);
  const events = await collect(client.sendMessageStream(message(QUESTION, {contextId}),
                                                        {signal: t1.signal}));
  t1.done();
  check(events[0].$case === 'task', 'the stream opens with the task');
  const taskId = events[0].value.id;
  log(`task ${taskId}: ${events.length} events`);
  check(events.every((e) => (e.value.id ?? e.value.taskId) === taskId &&
                            e.value.contextId === contextId),
        'every event names the task and the client\'s contextId');
  const last = events[events.length - 1];
  check(last.$case === 'statusUpdate' && last.value.status.state === TaskState.TASK_STATE_COMPLETED,
        'the last event is the COMPLETED status');
  check(events.some((e) => e.$case === 'statusUpdate' &&
                           e.value.status.state === TaskState.TASK_STATE_WORKING &&
                           e.value.status.message?.parts.length > 0),
        'WORKING statuses say what happens');
  const answers = events.filter((e) => e.$case === 'artifactUpdate' &&
                                       e.value.artifact.artifactId === 'answer');
  const complete = await ourComplete(taskId);
  check(answers.length === 1 && answers[0].value.lastChunk === true,
        'one answer artifact, its last chunk');
  check(partValue(answers[0].value.artifact.parts[0]) === complete.result.answer,
        'the answer artifact\'s text is the run\'s answer on our wire');
  const streamedParts = events.filter((e) => e.$case === 'artifactUpdate' &&
                                             e.value.artifact.artifactId !== 'answer')
      .map((e) => canon(partValue(e.value.artifact.parts[0])));
  const ours1 = await ourUpdates(taskId);
  check(canon(streamedParts) === canon(partials(ours1)),
        `the partial results are artifact chunks, in order (${streamedParts.length})`);

  const got = await client.getTask({id: taskId});
  check(got.id === taskId && got.contextId === contextId &&
        got.status.state === TaskState.TASK_STATE_COMPLETED,
        'GetTask: COMPLETED, the same contextId');
  const gotAnswer = got.artifacts.find((a) => a.artifactId === 'answer');
  check(partValue(gotAnswer.parts[0]) === complete.result.answer,
        'GetTask: the answer artifact');
  check(canon(got.artifacts.filter((a) => a.artifactId !== 'answer')
      .flatMap((a) => a.parts.map((p) => canon(partValue(p)))).sort()) ===
        canon([...partials(ours1)].sort()),
        'GetTask: the artifacts hold every partial result once');

  // 2. A slow task cancelled mid-run.
  const t2 = withTimeout(STREAM_TIMEOUT_MS);
  let cancelId;
  const cancelStream = collect(
      client.sendMessageStream(message('count slowly', {run: slowRun()}), {signal: t2.signal}),
      (e) => { cancelId ??= e.value.id ?? e.value.taskId; });
  const firstChunk = await waitFor('the slow task\'s first artifact', async () => {
    return cancelId && (await client.getTask({id: cancelId})).artifacts?.length > 0;
  });
  check(firstChunk, 'the slow task is under way');
  const cancelled = await client.cancelTask({id: cancelId});
  check(cancelled.id === cancelId && cancelled.status.state === TaskState.TASK_STATE_CANCELED,
        'CancelTask answers the task CANCELED');
  const cancelEvents = await cancelStream;
  t2.done();
  const cancelLast = cancelEvents[cancelEvents.length - 1];
  check(cancelLast.$case === 'statusUpdate' &&
        cancelLast.value.status.state === TaskState.TASK_STATE_CANCELED,
        'its stream ends with the CANCELED status');
  check((await ourComplete(cancelId)).outcome === 'cancelled',
        'our wire shows the run cancelled');
  try {
    await client.cancelTask({id: cancelId});
    check(false, 'a second CancelTask is refused');
  } catch (e) {
    check(e.name === 'TaskNotCancelableError', `a second CancelTask: ${e.name}`);
  }

  // 3. A slow task whose stream is cut, then resubscribed to.
  const cut = new AbortController();
  let resubId;
  const before = [];
  try {
    await collect(client.sendMessageStream(message('count slowly', {run: slowRun()}),
                                           {signal: cut.signal}),
                  (e) => {
                    resubId ??= e.value.id ?? e.value.taskId;
                    if (e.$case === 'artifactUpdate') {
                      before.push(canon(partValue(e.value.artifact.parts[0])));
                      if (before.length === 3) cut.abort();
                    }
                  });
    check(false, 'the stream was cut');
  } catch (e) {
    check(e.name === 'AbortError', `the stream was cut after 3 chunks (${e.name})`);
  }
  // The gap: the run goes on meanwhile.
  await new Promise((r) => setTimeout(r, 800));
  const t3 = withTimeout(STREAM_TIMEOUT_MS);
  const resub = await collect(client.resubscribeTask({id: resubId}, {signal: t3.signal}));
  t3.done();
  check(resub[0].$case === 'task' && resub[0].value.id === resubId,
        'the resubscribe opens with the task');
  const snapshot = resub[0].value.artifacts.flatMap((a) => a.parts.map((p) => canon(partValue(p))));
  check(snapshot.length >= before.length && canon(snapshot.slice(0, before.length)) === canon(before),
        `the task holds what came before the cut, and ${snapshot.length - before.length} chunks of the gap`);
  const after = resub.filter((e) => e.$case === 'artifactUpdate' &&
                                    e.value.artifact.artifactId !== 'answer')
      .map((e) => canon(partValue(e.value.artifact.parts[0])));
  const resubLast = resub[resub.length - 1];
  check(resubLast.$case === 'statusUpdate' &&
        resubLast.value.status.state === TaskState.TASK_STATE_COMPLETED,
        'the resubscribed stream ends COMPLETED');
  const ours3 = partials(await ourUpdates(resubId));
  check(canon([...snapshot, ...after]) === canon(ours3),
        `snapshot + after = the run's ${ours3.length} partial results, each once, in order`);

  // 4. SendMessage answers the task at once; the run goes on without a
  // follower, to the same answer.
  const sent = await client.sendMessage(message(QUESTION));
  check(sent.id && [TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING]
      .includes(sent.status.state), 'SendMessage: the task, as it starts');
  const done = await waitFor('the sent task to complete', async () => {
    const t = await client.getTask({id: sent.id});
    return t.status.state === TaskState.TASK_STATE_COMPLETED && t;
  }, 60000, 200);
  check(partValue(done.artifacts.find((a) => a.artifactId === 'answer').parts[0]) ===
        (await ourComplete(sent.id)).result.answer,
        'the sent task completes with the run\'s answer');

  // 5. An unknown task.
  try {
    await client.getTask({id: 'run_no_such_task'});
    check(false, 'GetTask of an unknown task is refused');
  } catch (e) {
    check(e.name === 'TaskNotFoundError', `GetTask of an unknown task: ${e.name}`);
  }

  // 6. A2A 0.3's names answer in 0.3's shapes.
  const v03 = await rpc('tasks/get', {id: taskId});
  const v03Task = JSON.parse(v03.text).result;
  check(v03Task.kind === 'task' && v03Task.status.state === 'completed' &&
        v03Task.contextId === contextId,
        'tasks/get: kind task, state completed');
  check(v03Task.artifacts.find((a) => a.artifactId === 'answer').parts[0].kind === 'text',
        'tasks/get: parts with kind');
  const v03Resub = await rpc('tasks/resubscribe', {id: taskId});
  check(v03Resub.type.startsWith('text/event-stream'), 'tasks/resubscribe streams');
  const v03Events = sseData(v03Resub.text);
  check(v03Events[0].result.kind === 'task' &&
        v03Events[v03Events.length - 1].result.kind === 'status-update' &&
        v03Events[v03Events.length - 1].result.final === true,
        'tasks/resubscribe of an ended task: the task, then the final status-update');
  const bad = JSON.parse((await rpc('tasks/nothing', {})).text);
  check(bad.error.code === -32601 && bad.id === 'v03', 'an unknown method: -32601');
});
