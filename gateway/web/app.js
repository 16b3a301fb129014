// The web client's view and wiring, built on the client library
// (agentstream.js, docs/CLIENT.md) the way a frontend is meant to use it:
// startRun() starts and follows a run (reconnects, resume by Last-Event-ID,
// each seq once, the heartbeat watchdog are the library's), onState() hands
// over the reducer's state after every update, and run.cancel() sends the
// DELETE. This file only renders that state in place (elements are created
// once and then updated, so progress bars animate). All text goes in through
// textContent: nothing from the stream is ever parsed as HTML.

import {askForToken, initAccessToken, tokenOption} from './access_token.js';
import {fetchSpecialists, startRun} from './agentstream.js';
import {OUTCOME_LABELS, SpecialistCard} from './cards.js';
import {$, h, renderFigures, renderResult, setAttr, setText} from './dom.js';
import {describeResult, humanizeKey, summarizeUpdate} from './format.js';
import {initialState, phaseSteps, specialistList} from './reducer.js';
import {streamNotice} from './session.js';

const EXAMPLES = [
  'Assess the risk and AML compliance of account ACC-1042 over the last 6 months',
  'Show the monthly spending trend and top counterparties of ACC-1042 in the last 12 months',
  'Check account ACC-1107 for structuring and velocity bursts since 2026-01-01',
];

const MAX_QUESTION_BYTES = 16 * 1024;

const PHASE_LABELS = {
  analyzing: 'Analyzing',
  delegating: 'Delegating',
  synthesizing: 'Synthesizing',
  complete: 'Complete',
};


const CONNECTION_LABELS = {
  idle: 'Ready',
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Finished',
  error: 'Disconnected',
};


// ---------------------------------------------------------------------------
// The page

let state = initialState();
// The AgentStream of the current question (null before the first), and
// whether it is still followed (its status is neither closed nor failed).
let run = null;
let running = false;
let renderPending = false;
const cards = new Map();
const rendered = {
  orchestratorThoughts: 0,
  logEvents: 0,
  synthesis: null,
  finalResult: undefined,
  errors: null
};
const forced = new Set();

function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    render();
  });
}

// True while the page follows a run (streaming, or about to reconnect).
function following() {
  return run !== null && running;
}

// Stops following the current run (the run itself goes on: Cancel ends it).
function stopFollowing() {
  if (run) run.close();
}

// Asks `question`: the library starts the run and follows it to its end;
// every state it reports is rendered (at most once a frame). The previous
// run's handlers check `run === current`, so a late event of an earlier
// question never reaches the view.
function start(question) {
  stopFollowing();
  resetView();
  const current = startRun(question, {
    specialists: [...forced],
    token: tokenOption(),
    onState: (next) => {
      if (run !== current) return;
      state = next;
      scheduleRender();
    },
    onStatus: (status, detail) => {
      if (run !== current) return;
      running = status !== 'closed' && status !== 'failed';
      if (status === 'failed' && detail.reason === 'unauthorized') askForToken(detail);
      scheduleRender();
    },
  });
  run = current;
  running = true;
  state = current.state;
  scheduleRender();
}

// The Cancel button: run.cancel() sends the DELETE; the library folds the
// request and its answer into the state (cancel_requested, cancel_result)
// and the stream brings the run's cancelled ending (specialist_complete,
// complete, done), or the library stops following after its grace period.
function cancelRun() {
  const pending = state.cancel && state.cancel.state === 'pending';
  if (!following() || !state.requestId || pending) return;
  run.cancel().then((result) => {
    if (result.outcome === 'unauthorized') askForToken({sentToken: true, message: result.note});
  });
}

function resetView() {
  for (const card of cards.values()) card.root.remove();
  cards.clear();
  rendered.orchestratorThoughts = 0;
  rendered.logEvents = 0;
  rendered.synthesis = null;
  rendered.finalResult = undefined;
  rendered.errors = null;
  $('orchestrator-thoughts').replaceChildren();
  $('log-body').replaceChildren();
  $('answer').replaceChildren();
  $('answer-figures').replaceChildren();
  $('run').hidden = false;
  document.body.classList.add('has-run');
}

function render() {
  const s = state;
  const active = following();

  // Connection and controls.
  setAttr($('connection'), 'data-connection', s.connection);
  setText($('connection-label'), CONNECTION_LABELS[s.connection] || s.connection);
  const cancelling =
      s.cancel !== null && (s.cancel.state === 'pending' || s.cancel.state === 'accepted');
  $('cancel').hidden = !active;
  $('cancel').disabled = !s.requestId || cancelling;
  setText($('cancel'), cancelling ? 'Cancelling…' : 'Cancel');
  $('send').disabled = active;
  $('send').textContent = active ? 'Running…' : 'Send';
  const notice = streamNotice(s);
  $('stream-notice').hidden = !notice;
  setText($('stream-notice'), notice);
  $('gap').hidden = !s.gap;
  setText(
      $('gap-message'),
      s.gap ? s.gap.message || 'Part of this run can no longer be replayed.' : '');

  // Phase stepper.
  setAttr($('status'), 'data-status', s.status);
  const stepper = $('stepper');
  const steps = phaseSteps(s);
  if (stepper.children.length !== steps.length) {
    stepper.replaceChildren(...steps.map(
        (step, i) =>
            h('li', {class: 'step', 'data-phase': step.phase},
              h('span', {class: 'step-dot', text: String(i + 1)}),
              h('span', {class: 'step-label', text: PHASE_LABELS[step.phase]}))));
  }
  steps.forEach((step, i) => setAttr(stepper.children[i], 'data-state', step.state));
  let message = s.statusMessage;
  if (s.status === 'cancelled') message = (s.stopped && s.stopped.note) || 'The run was cancelled.';
  if (s.status === 'failed') {
    const runErrors = s.errors.filter((e) => !e.specialist);
    message = s.gap      ? 'The rest of this run can no longer be replayed (see below).' :
        runErrors.length ? 'The run failed (see below).' :
                           'The run failed.';
  }
  if (s.status === 'complete') {
    const n = s.order.length;
    message = s.outcome === 'partial' ?
        `Complete, without ${s.missing.map(displayName).join(', ') || 'some specialists'}` :
        `Complete · ${n} ${n === 1 ? 'specialist' : 'specialists'} reported`;
  }
  setText($('status-message'), message);
  setText($('request-id'), s.requestId || '');
  const done = s.order.filter((n) => s.specialists[n].outcome).length;
  setText($('run-stats'), `${s.eventCount} events · ${done}/${s.order.length} specialists done`);

  // Run-level errors.
  if (s.errors !== rendered.errors) {
    rendered.errors = s.errors;
    // A gap has its own banner (with "Ask again").
    const runErrors = s.errors.filter((e) => !e.specialist && e.code !== 'gap');
    const banner = $('run-errors');
    banner.hidden = runErrors.length === 0;
    banner.replaceChildren(...runErrors.map(
        (e) => h('p', {}, h('strong', {text: `${humanizeKey(e.code)}: `}), e.message)));
  }

  // Orchestrator thinking.
  const thoughts = s.orchestratorThoughts.filter((t) => t.visible);
  const list = $('orchestrator-thoughts');
  for (; rendered.orchestratorThoughts < thoughts.length; rendered.orchestratorThoughts++) {
    list.append(h('li', {text: thoughts[rendered.orchestratorThoughts].text}));
  }
  $('orchestrator-empty').hidden = thoughts.length > 0;

  // Synthesis.
  if (s.synthesis !== rendered.synthesis) {
    rendered.synthesis = s.synthesis;
    const syn = s.synthesis;
    setText($('synthesis-message'), syn ? syn.message : '');
    $('synthesis-chips')
        .replaceChildren(
            ...(syn ? syn.complete : []).map((n) => {
              // Ended is not the same as answered: a cancelled, failed or
              // timed-out specialist is shown as such.
              const outcome = s.specialists[n] ? s.specialists[n].outcome : null;
              return outcome && outcome !== 'ok' ?
                  h('span', {class: 'chip chip-missing'}, '✗ ', displayName(n),
                    ` (${outcome.replace('_', ' ')})`) :
                  h('span', {class: 'chip chip-done'}, '✓ ', displayName(n));
            }),
            ...(syn ? syn.pending : [])
                .map((n) => h('span', {class: 'chip chip-pending'}, '… ', displayName(n))));
    $('synthesis-empty').hidden = syn !== null;
  }
  if (!s.synthesis) {
    const ended = s.done !== null || s.stopped !== null || s.finalResult !== null;
    setText(
        $('synthesis-empty'),
        ended ? 'No specialist finished.' : 'Waiting for the first specialist to finish…');
  }

  // Answer.
  if (s.finalResult !== rendered.finalResult) {
    rendered.finalResult = s.finalResult;
    renderAnswer(s);
  }

  // Cards.
  const grid = $('cards');
  for (const sp of specialistList(s)) {
    let card = cards.get(sp.name);
    if (!card) {
      card = new SpecialistCard(sp.name);
      cards.set(sp.name, card);
      grid.append(card.root);
    }
    card.update(sp, s.done !== null || s.stopped !== null || s.finalResult !== null);
  }
  setText($('specialist-count'), s.order.length ? String(s.order.length) : '');

  renderLog(s);
}

function displayName(name) {
  const sp = state.specialists[name];
  return sp ? `${sp.icon ? `${sp.icon} ` : ''}${sp.displayName}` : name;
}

function renderAnswer(s) {
  const card = $('answer-card');
  const result = s.finalResult;
  setAttr(card, 'data-outcome', s.outcome || '');
  $('answer-placeholder').hidden = result !== null;
  const badge = $('answer-outcome');
  badge.hidden = !s.outcome;
  setText(badge, OUTCOME_LABELS[s.outcome] || s.outcome || '');
  setAttr(badge, 'data-outcome', s.outcome || '');
  if (result === null) return;
  const answer = s.answer ||
      (s.outcome === 'cancelled' ? 'The run was cancelled before an answer was ready.' :
                                   'The run ended without an answer text.');
  $('answer').replaceChildren(...answer.split(/\n{2,}/).map((p) => h('p', {text: p})));

  const figures = $('answer-figures');
  const perSpecialist =
      result.specialists && typeof result.specialists === 'object' ? result.specialists : {};
  figures.replaceChildren(...Object.entries(perSpecialist).map(([name, value]) => {
    const d = describeResult(value, []);
    return h(
        'div', {class: 'answer-specialist'}, h('h3', {text: displayName(name)}),
        d.figures.length ? renderFigures(d.figures.slice(0, 8)) : renderResult(value));
  }));
  const missing = $('answer-missing');
  missing.hidden = s.missing.length === 0;
  missing.replaceChildren(
      h('span', {class: 'missing-label', text: 'Missing: '}),
      ...s.missing.map((n) => h('span', {class: 'chip chip-missing', text: displayName(n)})));
}

function renderLog(s) {
  setText($('log-count'), String(s.eventCount));
  const body = $('log-body');
  const fresh = s.eventCount - rendered.logEvents;
  if (fresh <= 0) return;
  const entries = s.log.slice(Math.max(0, s.log.length - fresh));
  const stick = body.scrollTop + body.clientHeight >= body.scrollHeight - 8;
  for (const e of entries) {
    const row =
        h('details', {class: 'log-row', 'data-type': e.type},
          h('summary', {}, h('span', {class: 'log-seq', text: e.seq !== null ? `#${e.seq}` : '·'}),
            h('span', {class: 'log-type', text: e.type}),
            h('span', {class: 'log-summary', text: summarizeUpdate(e.data)})),
          h('pre', {class: 'json', text: JSON.stringify(e.data, null, 2)}));
    body.append(row);
  }
  while (body.childElementCount > 2000) body.firstElementChild.remove();
  rendered.logEvents = s.eventCount;
  if (stick) body.scrollTop = body.scrollHeight;
}

// ---------------------------------------------------------------------------
// The composer

function showFormError(text) {
  const el = $('form-error');
  el.hidden = !text;
  setText(el, text || '');
}

function submit(event) {
  if (event) event.preventDefault();
  if (following()) return;
  const question = $('question').value.trim();
  if (!question) {
    showFormError('Type a question first, or pick one of the examples.');
    $('question').focus();
    return;
  }
  if (new TextEncoder().encode(question).length > MAX_QUESTION_BYTES) {
    showFormError('That question is longer than 16 KiB; please shorten it.');
    return;
  }
  showFormError('');
  start(question);
}

async function loadRoster() {
  let body;
  try {
    body = await fetchSpecialists({token: tokenOption()});
  } catch (e) {
    // The first request a page makes: a 401 here asks for the token.
    if (e && e.reason === 'unauthorized') askForToken(e);
    return;
  }
  // Accept a bare list or {specialists: [...]}, flat cards or {card: ...}.
  const items = Array.isArray(body)           ? body :
      body && Array.isArray(body.specialists) ? body.specialists :
                                                [];
  const cardsList = items
                        .map((item) => {
                          const card = item && typeof item.card === 'object' && item.card ?
                              item.card :
                              item || {};
                          return {
                            name: String(card.name || ''),
                            displayName: String(card.display_name || card.name || ''),
                            icon: String(card.icon || ''),
                            description: String(card.description || ''),
                            available: item.available !== false && card.available !== false,
                            explicitOnly: card.explicit_only === true,
                          };
                        })
                        .filter((c) => c.name);
  if (cardsList.length === 0) return;
  const chips = $('roster-chips');
  chips.replaceChildren(...cardsList.map((c) => {
    const chip = h(
        'button', {
          type: 'button',
          class: 'roster-chip',
          'data-available': String(c.available),
          'aria-pressed': String(forced.has(c.name)),
          title: `${c.description}${c.available ? '' : ' (unavailable)'}${
              c.explicitOnly ? ' (only when selected)' : ''}`,
        },
        h('span', {class: 'roster-icon', 'aria-hidden': 'true', text: c.icon}),
        h('span', {text: c.displayName}), h('span', {class: 'roster-dot', 'aria-hidden': 'true'}));
    chip.addEventListener('click', () => {
      if (forced.has(c.name))
        forced.delete(c.name);
      else
        forced.add(c.name);
      chip.setAttribute('aria-pressed', String(forced.has(c.name)));
      updateRosterMode();
    });
    return chip;
  }));
  $('roster').hidden = false;
  updateRosterMode();
}

function updateRosterMode() {
  setText(
      $('roster-mode'),
      forced.size ?
          `Only the selected ${forced.size === 1 ? 'specialist' : 'specialists'} will run` :
          'The orchestrator picks · click to choose yourself');
}

function init() {
  const examples = $('examples');
  examples.replaceChildren(...EXAMPLES.map((q) => h('button', {
                                             type: 'button',
                                             class: 'example',
                                             text: q,
                                             onclick: () => {
                                               $('question').value = q;
                                               $('question').focus();
                                               showFormError('');
                                             },
                                           })));
  $('ask-form').addEventListener('submit', submit);
  $('question').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) submit(e);
  });
  $('cancel').addEventListener('click', cancelRun);
  $('ask-again').addEventListener('click', () => {
    if (!state.question || following()) return;
    $('question').value = state.question;
    start(state.question);
  });
  window.addEventListener('pagehide', stopFollowing);
  initAccessToken(loadRoster);
  const preset = new URLSearchParams(location.search).get('q');
  if (preset) $('question').value = preset;
  loadRoster();
  render();
  if (preset && new URLSearchParams(location.search).get('run') === '1') submit();
}

init();
