// The `ai` package's own client, unchanged (DefaultChatTransport +
// readUIMessageStream), against the gateway's AI SDK UI message stream
// (docs/PROTOCOLS.md, "AI SDK UI message stream"). Run by dialects_e2e.py
// --client ai_sdk:
//   (1) the ACC-1042 question into one UI message (the answer of our
//       `complete`, a data part per specialist at 100%, reasoning, tool
//       parts output-available), then reconnectToStream -> null (204);
//   (2) a slow run cut mid-way, reconnectToStream (a replay) -> the same
//       message as a reading of the whole run, no part twice; then 204;
//   (2b) the same, continued after Last-Event-ID into the kept message;
//   (5) useChat's core (AbstractChat): a lost stream and resumeStream();
//   (4) bad requests: 400 with our JSON error.
import {AbstractChat, DefaultChatTransport, readUIMessageStream} from 'ai';

import {BASE, check, EXPECTED_SPECIALISTS, log, main, ourUpdates,
        QUESTION, slowRun} from './dialect_support.mjs';

const API = `${BASE}/api/ai-sdk/chat`;

function userMessage(text) {
  return [{id: 'u1', role: 'user', parts: [{type: 'text', text}]}];
}

// Reads a stream into its final UI message, with the errors the client saw.
async function consume(stream, message = undefined) {
  const errors = [];
  let last = message;
  for await (const m of readUIMessageStream(
      {stream, message, onError: (e) => errors.push(e.message)})) {
    last = m;
  }
  return {message: last, errors};
}

// A fetch that passes a response through until it has given `events` SSE
// events and the last was a data part (a whole update: docs/PROTOCOLS.md),
// then cuts the connection (once; later requests pass): the body ends (`close`) or fails as a lost
// network does (`network`). `state` has the last `id:` the client got.
function cuttingFetch(events, how = 'close') {
  const state = {lastId: null, events: 0, cut: false, runId: null};
  const fetchImpl = async (url, init) => {
    if (state.cut) return fetch(url, init);  // Cuts once.
    const ctl = new AbortController();
    const response = await fetch(url, {...init, signal: ctl.signal});
    state.runId = response.headers.get('x-request-id');
    if (!response.ok) return response;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = '';
    const body = new ReadableStream({
      async pull(controller) {
        for (;;) {
          const end = buffer.indexOf('\n\n');
          if (end >= 0) {
            const block = buffer.slice(0, end + 2);
            buffer = buffer.slice(end + 2);
            controller.enqueue(encoder.encode(block));
            const id = /^id: (.*)$/m.exec(block);
            if (id) state.lastId = id[1];
            const data = /^data: (.*)$/m.exec(block);
            if (data) {
              state.events += 1;
              if (state.events >= events && data[1].startsWith('{"type":"data-')) {
                state.cut = true;
                ctl.abort();
                if (how === 'network') {
                  controller.error(new TypeError('fetch failed: network connection lost'));
                } else {
                  controller.close();
                }
              }
            }
            return;
          }
          const {value, done} = await reader.read();
          if (done) {
            controller.close();
            return;
          }
          buffer += decoder.decode(value, {stream: true});
        }
      },
    });
    return new Response(body, {status: response.status, headers: response.headers});
  };
  return {fetchImpl, state};
}

// What a message must be for run `runId`, by the run on our own wire.
async function checkMessage(label, message, runId) {
  const updates = await ourUpdates(runId);
  const complete = updates.find((u) => u.type === 'complete');
  check(message.id === `msg_${runId}`, `${label}: message id msg_<run id>`);
  const texts = message.parts.filter((p) => p.type === 'text');
  check(texts.length === 1 && texts[0].text === complete.result.answer &&
            texts[0].state === 'done',
        `${label}: one text part, our complete's answer`);
  const specialists = [...new Set(updates.map((u) => u.specialist).filter(Boolean))];
  const parts = message.parts.filter((p) => p.type === 'data-specialist');
  check(parts.length === specialists.length &&
            specialists.every((s) => parts.some((p) => p.id === s)),
        `${label}: one data-specialist part per specialist (${specialists})`);
  const keys = message.parts.map((p) => p.type.startsWith('data-') ? `${p.type}/${p.id}` :
      p.toolCallId ? `tool/${p.toolCallId}` : null).filter(Boolean);
  check(new Set(keys).size === keys.length, `${label}: no data or tool part twice`);
  const thoughts = updates.filter((u) => u.type === 'thinking' && u.visible !== false && u.thought);
  const reasoning = message.parts.filter((p) => p.type === 'reasoning');
  check(reasoning.length === thoughts.length &&
            reasoning.every((p, i) => p.text === thoughts[i].thought && p.state === 'done'),
        `${label}: a reasoning part per thought (${thoughts.length}), in order`);
  const calls = updates.filter((u) => u.type === 'tool_call');
  const tools = message.parts.filter((p) => p.type.startsWith('tool-'));
  check(tools.length === calls.length &&
            tools.every((p, i) => p.type === `tool-${calls[i].tool}` &&
                                   p.state === 'output-available'),
        `${label}: a tool part per tool call (${calls.length}), all output-available`);
  const status = message.parts.filter((p) => p.type === 'data-status');
  check(status.length === 1 && status[0].data.status === 'complete' &&
            status[0].data.runId === runId,
        `${label}: one data-status part, complete`);
  return {updates, complete};
}

// The same parts, ignoring the step marker (a continuation sends no
// start-step).
function sameParts(a, b) {
  const strip = (m) => JSON.stringify(m.parts.filter((p) => p.type !== 'step-start'));
  return strip(a) === strip(b);
}

async function reference(runId) {
  const transport = new DefaultChatTransport({
    api: API,
    prepareReconnectToStreamRequest: () => ({headers: {'Last-Event-ID': `${runId}:0`}}),
  });
  return (await consume(await transport.reconnectToStream({chatId: 'unused-ref'}))).message;
}

main('ai_sdk_client_test', async () => {
  // (1) The ACC-1042 question, whole.
  let runId = null;
  let protocol = null;
  const transport = new DefaultChatTransport({
    api: API,
    fetch: async (url, init) => {
      const r = await fetch(url, init);
      runId = r.headers.get('x-request-id');
      protocol = r.headers.get('x-vercel-ai-ui-message-stream');
      return r;
    },
  });
  const chatId = 'chat-acc1042';
  const first = await consume(await transport.sendMessages({
    chatId, messages: userMessage(QUESTION), trigger: 'submit-message',
    messageId: undefined, abortSignal: undefined}));
  check(protocol === 'v1', 'x-vercel-ai-ui-message-stream: v1');
  check(first.errors.length === 0, `no stream errors (${first.errors})`);
  check(first.message.metadata?.runId === runId, 'the message names our run id');
  await checkMessage('ACC-1042', first.message, runId);
  for (const name of EXPECTED_SPECIALISTS) {
    const part = first.message.parts.find((p) => p.type === 'data-specialist' && p.id === name);
    check(part && part.data.progress === 100 && part.data.outcome === 'ok',
          `${name}: its data part at 100%, ok`);
  }
  check(first.message.parts.filter((p) => p.type === 'reasoning').length > 0,
        'reasoning parts for the thinking');
  check(first.message.parts.some((p) => p.type.startsWith('tool-')),
        'tool parts for the tool calls');
  // (3) Its stream was sent to the end: nothing to reconnect to.
  check(await transport.reconnectToStream({chatId}) === null,
        'reconnectToStream after the end: null (204)');
  check(await transport.reconnectToStream({chatId: 'never-used'}) === null,
        'reconnectToStream of an unknown chat: null (204)');

  // (2) A slow run cut mid-way, then reconnectToStream (a replay).
  {
    const chat = 'chat-slow-replay';
    const cut = cuttingFetch(8);
    const cutting = new DefaultChatTransport({api: API, fetch: cut.fetchImpl,
                                              body: slowRun()});
    const partial = await consume(await cutting.sendMessages({
      chatId: chat, messages: userMessage('Emit synthetic results'),
      trigger: 'submit-message', messageId: undefined, abortSignal: undefined}));
    check(cut.state.cut, `the POST stream was cut after ${cut.state.events} events`);
    const synthetic = partial.message.parts.find(
        (p) => p.type === 'data-specialist' && p.id === 'Synthetic');
    check(!partial.message.parts.some((p) => p.type === 'text') &&
              (!synthetic || synthetic.data.progress < 100),
          'cut mid-way: no answer yet, Synthetic below 100%');
    const resumed = await consume(await new DefaultChatTransport({api: API})
                                      .reconnectToStream({chatId: chat}));
    check(resumed.errors.length === 0, 'the replay has no errors');
    await checkMessage('replay', resumed.message, cut.state.runId);
    const ref = await reference(cut.state.runId);
    check(sameParts(resumed.message, ref), 'the replay equals a reading of the whole run');
    check(await new DefaultChatTransport({api: API}).reconnectToStream({chatId: chat}) === null,
          'after the replay was read to the end: null (204)');
  }

  // (2b) Cut again, then continue after Last-Event-ID with the message kept.
  {
    const chat = 'chat-slow-continue';
    const cut = cuttingFetch(12);
    const cutting = new DefaultChatTransport({api: API, fetch: cut.fetchImpl,
                                              body: slowRun()});
    const partial = await consume(await cutting.sendMessages({
      chatId: chat, messages: userMessage('Emit synthetic results'),
      trigger: 'submit-message', messageId: undefined, abortSignal: undefined}));
    check(cut.state.cut && cut.state.lastId?.startsWith(`${cut.state.runId}:`),
          `cut at ${cut.state.lastId}`);
    const continuing = new DefaultChatTransport({
      api: API,
      prepareReconnectToStreamRequest: () => ({headers: {'Last-Event-ID': cut.state.lastId}}),
    });
    const rest = await consume(await continuing.reconnectToStream({chatId: chat}),
                               partial.message);
    check(rest.errors.length === 0, 'the continuation has no errors');
    await checkMessage('continuation', rest.message, cut.state.runId);
    const ref = await reference(cut.state.runId);
    check(sameParts(rest.message, ref),
          'the cut message + its continuation equal a reading of the whole run');
    check(await new DefaultChatTransport({api: API}).reconnectToStream({chatId: chat}) === null,
          'after the continuation was read to the end: null (204)');
  }

  // (5) useChat's own logic (AbstractChat, what useChat wraps): a stream
  // lost mid-way, then resumeStream() (resumeStreamIsReplay, the default):
  // one assistant message, the same as a reading of the whole run.
  {
    const cut = cuttingFetch(10, 'network');
    class NodeChat extends AbstractChat {
      constructor(init) {
        super({...init, state: {
          status: 'ready', error: undefined, messages: [],
          pushMessage(m) { this.messages = this.messages.concat(m); },
          popMessage() { this.messages = this.messages.slice(0, -1); },
          replaceMessage(i, m) {
            this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)];
          },
          snapshot: (thing) => structuredClone(thing),
        }});
      }
    }
    const chatErrors = [];
    const chat = new NodeChat({
      id: 'chat-usechat',
      transport: new DefaultChatTransport({api: API, fetch: cut.fetchImpl, body: slowRun()}),
      onError: (e) => chatErrors.push(e.message),
    });
    await chat.sendMessage({text: 'Emit synthetic results'});
    check(cut.state.cut && chat.status === 'error',
          `useChat: the stream was lost after ${cut.state.events} events (status ${chat.status})`);
    await chat.resumeStream();
    check(chat.status === 'ready',
          `useChat: resumed to the end (status ${chat.status} ${chat.error?.message ?? ''})`);
    const roles = chat.messages.map((m) => m.role);
    check(JSON.stringify(roles) === '["user","assistant"]',
          `useChat: one user and one assistant message (${roles})`);
    await checkMessage('useChat', chat.messages[1], cut.state.runId);
    check(sameParts(chat.messages[1], await reference(cut.state.runId)),
          'useChat: the resumed message equals a reading of the whole run');
  }

  // (4) Bad requests: 400 with a JSON body.
  const bad = [
    ['not JSON', 'not json'],
    ['no chat id', JSON.stringify({messages: userMessage('hi')})],
    ['a bad chat id', JSON.stringify({id: 'a b', messages: userMessage('hi')})],
    ['no messages', JSON.stringify({id: 'c1'})],
    ['no user message', JSON.stringify({id: 'c1', messages: [
      {id: 'a', role: 'assistant', parts: [{type: 'text', text: 'x'}]}]})],
    ['a bad trigger', JSON.stringify({id: 'c1', messages: userMessage('hi'), trigger: 'x'})],
    ['bad options', JSON.stringify({id: 'c1', messages: userMessage('hi'), options: [1]})],
  ];
  for (const [what, body] of bad) {
    const r = await fetch(API, {method: 'POST', body,
                                headers: {'content-type': 'application/json'}});
    const json = await r.json().catch(() => null);
    check(r.status === 400 && json && json.error === 'invalid_argument',
          `${what}: 400 ${JSON.stringify(json)}`);
  }
  const badChat = await fetch(`${API}/${encodeURIComponent('a/b')}/stream`);
  check(badChat.status === 400 && (await badChat.json()).error === 'invalid_argument',
        'reconnect with a bad chat id: 400 JSON');
  const badCursor = await fetch(`${API}/c1/stream`, {headers: {'Last-Event-ID': 'nope'}});
  check(badCursor.status === 400, 'reconnect with a malformed Last-Event-ID: 400');
  log('done');
});
