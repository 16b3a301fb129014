// The web client's whole model: a pure reducer that folds the gateway's SSE
// updates (docs/GATEWAY.md, "The wire") into one state object that the view renders.
//
//   reduce(state, update) -> state
//
// `update` is the parsed JSON of one SSE event (`type` is one of the contract's
// kinds, or `connected` / `done` from the gateway), or one of the client's own
// events, which the client library (agentstream.js) folds in: `reset` (a
// new question was sent), `transport_error` (the connection was lost or could
// not be opened), `retry_scheduled` (the library reconnects after a backoff),
// `cancel_requested` / `cancel_result` (cancel() and the answer to its
// DELETE) and `stopped` (the client stopped following the run). Pure: never mutates its
// inputs, no DOM, no clock, so Node tests it as it is
// (tests/e2e/web/reducer_test.mjs).
//
// Streams survive (issue 4): the reducer is idempotent by seq (an update at or
// below the last applied seq is ignored, so a resume that replays never
// duplicates anything), a `connected` with status "resumed" keeps the state,
// and a gateway `error` that the stream survives (`slow_consumer`, retryable
// `unavailable`) only means "reconnecting" (see session.js).

import {isReconnectError} from './session.js';

// The phases of a run in the order the orchestrator goes through them.
export const PHASES = Object.freeze(['analyzing', 'delegating', 'synthesizing', 'complete']);

// Run statuses after which nothing more happens.
export const TERMINAL_STATUSES = Object.freeze(['complete', 'cancelled', 'failed']);

// How many raw events the log keeps (the oldest are dropped, and counted).
export const MAX_LOG_ENTRIES = 2000;

// The name the orchestrator uses for itself in `thinking` updates.
export const ORCHESTRATOR_AGENT = 'Orchestrator';

/** The state before any question was sent. */
export function initialState() {
  return {
    question: '',
    requestId: null,
    // idle | connecting | open | reconnecting | closed | error
    connection: 'idle',
    // idle | analyzing | delegating | synthesizing | complete | cancelled | failed
    status: 'idle',
    statusMessage: '',
    // The phases reached so far: {analyzing: {seq, message}, ...}.
    phases: {},
    orchestratorThoughts: [],
    // name -> specialist (see newSpecialist), plus their activation order.
    specialists: {},
    order: [],
    // name -> every partial_result of that specialist merged into one object.
    results: {},
    synthesis: null,
    answer: null,
    finalResult: null,
    outcome: null,
    missing: [],
    // Every error and timeout of the run, specialists' included (their cards
    // show theirs); `specialist` is null for run-level ones.
    errors: [],
    timeouts: [],
    done: null,
    stopped: null,
    // Why the stream is reconnecting ({code, message}), while it is.
    notice: null,
    // The client's next reconnect, while it waits for it: {attempt, delayMs}.
    retry: null,
    // How many times the stream was resumed (connected with "resumed").
    resumes: 0,
    // The log no longer holds what came next: {message}; the run cannot go on
    // here and the question should be asked again.
    gap: null,
    // The Cancel button: null, or {state: pending | accepted | ended |
    // unknown | failed, note}.
    cancel: null,
    lastSeq: 0,
    eventCount: 0,
    log: [],
    logDropped: 0,
  };
}

function newSpecialist(name) {
  return {
    name,
    displayName: name,
    icon: '',
    task: '',
    activated: false,
    progress: 0,
    currentAction: '',
    thoughts: [],
    toolCalls: [],
    // [{key, titleField, seq, result}], one per distinct title (latest
    // wins); see partialTitle.
    partials: [],
    outcome: null,
    durationMs: null,
    errors: [],
    timeouts: [],
    instance: null,
  };
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(v) {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

function num(v) {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

function strList(v) {
  return Array.isArray(v) ? v.map(str) : [];
}

/** Clamps a reported progress to an integer in 0..100 (null if not a number). */
export function clampProgress(v) {
  const n = num(v);
  if (n === null) return null;
  return Math.max(0, Math.min(100, Math.round(n)));
}

function isTerminal(status) {
  return TERMINAL_STATUSES.includes(status);
}

// The run status a `complete` update's outcome stands for.
function statusForOutcome(outcome) {
  if (outcome === 'cancelled') return 'cancelled';
  if (outcome === 'failed') return 'failed';
  return 'complete';
}

// Fields a partial result may name itself by, in order of preference.
const TITLE_FIELDS = ['query', 'part', 'section', 'stage', 'rule'];

// The field that names a partial result ("totals", "volatility", ...), or
// null. A long text (a rule spelled out) is content, not a name.
function partialTitleField(result) {
  for (const field of TITLE_FIELDS) {
    const v = result[field];
    if (typeof v === 'string' && v.length > 0 && v.length <= 40) return field;
  }
  return null;
}

// The specialist an update is about: the envelope's `specialist`, or for
// `thinking` the agent when it is not the orchestrator.
function specialistOf(update) {
  const name = str(update.specialist);
  if (name) return name;
  if (update.type === 'thinking') {
    const agent = str(update.agent);
    if (agent && agent !== ORCHESTRATOR_AGENT) return agent;
  }
  return '';
}

function withSpecialist(state, name, change) {
  const before = state.specialists[name];
  const base = before || newSpecialist(name);
  const after = change(base);
  const specialists = {...state.specialists, [name]: after};
  const order = before ? state.order : [...state.order, name];
  return {...state, specialists, order};
}

function logEntry(update) {
  return {
    seq: num(update.seq),
    type: str(update.type) || 'unknown',
    specialist: specialistOf(update) || null,
    emittedAtNs: num(update.emitted_at_ns),
    data: update,
  };
}

function appendLog(state, update) {
  let log = [...state.log, logEntry(update)];
  let logDropped = state.logDropped;
  if (log.length > MAX_LOG_ENTRIES) {
    logDropped += log.length - MAX_LOG_ENTRIES;
    log = log.slice(log.length - MAX_LOG_ENTRIES);
  }
  return {...state, log, logDropped, eventCount: state.eventCount + 1};
}

// True for an update already folded in. `error` and `timeout` updates arrive
// twice (as `message` and as their own named event) and seq is dense and
// ordered on one stream, so a seq at or below the last one is a repeat. An
// update without seq (from the gateway itself) is a repeat when it equals the
// last error.
function isDuplicate(state, update) {
  const seq = num(update.seq);
  if (seq !== null && seq > 0) return seq <= state.lastSeq;
  if (update.type === 'error' && state.errors.length > 0) {
    const last = state.errors[state.errors.length - 1];
    return last.seq === null && last.code === str(update.code) &&
        last.message === str(update.message);
  }
  return false;
}

function reduceUpdate(state, u) {
  switch (u.type) {
    case 'connected':
      // A resumed stream replays after the client's last seq: keep the state.
      return {
        ...state,
        requestId: str(u.request_id) || state.requestId,
        connection: 'open',
        notice: null,
        retry: null,
        resumes: state.resumes + (u.status === 'resumed' ? 1 : 0),
      };

    case 'status': {
      const status = str(u.status) || state.status;
      const phases = {...state.phases, [status]: {seq: num(u.seq), message: str(u.message)}};
      return {...state, status, statusMessage: str(u.message), phases};
    }

    case 'specialist_activated':
      return withSpecialist(
          state, specialistOf(u), (s) => ({
                                    ...s,
                                    activated: true,
                                    task: str(u.task) || s.task,
                                    icon: str(u.icon) || s.icon,
                                    displayName: str(u.display_name) || s.displayName,
                                    instance: str(u.instance) || s.instance,
                                  }));

    case 'progress': {
      const progress = clampProgress(u.progress);
      return withSpecialist(
          state, specialistOf(u), (s) => ({
                                    ...s,
                                    progress: progress === null ? s.progress : progress,
                                    currentAction: str(u.current_action) || s.currentAction,
                                    instance: str(u.instance) || s.instance,
                                  }));
    }

    case 'thinking': {
      const thought = {text: str(u.thought), visible: u.visible !== false, seq: num(u.seq)};
      const name = specialistOf(u);
      if (!name) {
        return {...state, orchestratorThoughts: [...state.orchestratorThoughts, thought]};
      }
      return withSpecialist(state, name, (s) => ({...s, thoughts: [...s.thoughts, thought]}));
    }

    case 'tool_call': {
      const parameters = isObject(u.parameters) ? u.parameters : {};
      const call = {
        tool: str(u.tool),
        sql: typeof parameters.sql === 'string' ? parameters.sql : null,
        params: parameters.params === undefined ? null : parameters.params,
        parameters,
        seq: num(u.seq),
      };
      return withSpecialist(
          state, specialistOf(u), (s) => ({...s, toolCalls: [...s.toolCalls, call]}));
    }

    case 'partial_result': {
      const result = isObject(u.result) ? u.result : {};
      const name = specialistOf(u);
      const next = withSpecialist(state, name, (s) => {
        const titleField = partialTitleField(result);
        const key = titleField ? str(result[titleField]) : `result ${s.partials.length + 1}`;
        const entry = {key, titleField, seq: num(u.seq), result};
        const at = s.partials.findIndex((p) => p.key === key);
        const partials =
            at < 0 ? [...s.partials, entry] : s.partials.map((p, i) => (i === at ? entry : p));
        return {...s, partials};
      });
      return {
        ...next,
        results: {...next.results, [name]: {...(next.results[name] || {}), ...result}}
      };
    }

    case 'synthesis':
      return {
        ...state,
        synthesis: {
          message: str(u.message),
          complete: strList(u.specialists_complete),
          pending: strList(u.specialists_pending),
        },
      };

    case 'specialist_complete':
      return withSpecialist(state, specialistOf(u), (s) => ({
                                                      ...s,
                                                      outcome: str(u.outcome) || 'ok',
                                                      durationMs: num(u.duration_ms),
                                                    }));

    case 'complete': {
      const result = isObject(u.result) ? u.result : {};
      const outcome = str(u.outcome) || 'ok';
      const status = statusForOutcome(outcome);
      const phases = state.phases[status] ?
          state.phases :
          {...state.phases, [status]: {seq: num(u.seq), message: ''}};
      return {
        ...state,
        finalResult: result,
        answer: str(result.answer),
        outcome,
        missing: strList(result.missing),
        status,
        phases,
      };
    }

    case 'error': {
      const name = specialistOf(u);
      if (!name && isReconnectError(u)) {
        // The stream ends without `done`; the client reconnects.
        return {
          ...state,
          connection: 'reconnecting',
          notice: {code: str(u.code), message: str(u.message)},
        };
      }
      const error = {
        code: str(u.code) || 'error',
        message: str(u.message),
        specialist: name || null,
        retryable: u.retryable === true,
        seq: num(u.seq),
      };
      const next = {...state, errors: [...state.errors, error]};
      if (!name) {
        return error.code === 'gap' ? {...next, gap: {message: error.message}} : next;
      }
      return withSpecialist(next, name, (s) => ({...s, errors: [...s.errors, error]}));
    }

    case 'timeout': {
      const name = specialistOf(u);
      const timeout = {
        message: str(u.message),
        action: str(u.action),
        specialist: name || null,
        seq: num(u.seq),
      };
      const next = {...state, timeouts: [...state.timeouts, timeout]};
      if (!name) return next;
      return withSpecialist(next, name, (s) => ({...s, timeouts: [...s.timeouts, timeout]}));
    }

    case 'done': {
      const doneStatus = str(u.status) || 'complete';
      const status = isTerminal(state.status) ? state.status :
          isTerminal(doneStatus)              ? doneStatus :
                                                'failed';
      return {
        ...state,
        done: {status: doneStatus},
        connection: 'closed',
        status,
        notice: null,
        retry: null,
      };
    }

    default:
      // Unknown kinds (a newer gateway) only go to the log.
      return state;
  }
}

/**
 * Folds one update into the state and returns the new state. Unknown or
 * malformed updates never throw: they are logged (if they have a type) or
 * ignored.
 */
export function reduce(state, update) {
  if (!isObject(update)) return state;
  switch (update.type) {
    case 'reset':
      return {
        ...initialState(),
        question: str(update.question),
        connection: 'connecting',
      };
    case 'transport_error': {
      if (state.done || state.stopped) return state;
      if (!update.fatal) return {...state, connection: 'reconnecting'};
      if (state.finalResult !== null) {
        // Everything up to `complete` arrived; only `done` was lost (a resume
        // after the final event is answered 204). The run is over, not failed.
        return {
          ...state,
          connection: 'closed',
          done: {status: state.status},
          notice: null,
          retry: null,
        };
      }
      const error = {
        // 'unauthorized' (a 401: the library does not retry it), else 'connection'.
        code: str(update.code) || 'connection',
        message: str(update.message) || 'The connection to the gateway failed.',
        specialist: null,
        retryable: update.code !== 'unauthorized',
        seq: null,
      };
      return {
        ...state,
        connection: 'error',
        errors: [...state.errors, error],
        status: isTerminal(state.status) ? state.status : 'failed',
        notice: null,
        retry: null,
      };
    }
    case 'retry_scheduled':
      if (state.done || state.stopped) return state;
      return {
        ...state,
        connection: 'reconnecting',
        retry: {attempt: num(update.attempt) || 1, delayMs: num(update.delayMs) || 0},
      };
    case 'cancel_requested':
      if (state.done || state.stopped) return state;
      return {...state, cancel: {state: 'pending', note: ''}};
    case 'cancel_result':
      if (!state.cancel) return state;
      return {...state, cancel: {state: str(update.outcome) || 'failed', note: str(update.note)}};
    case 'stopped':
      return {
        ...state,
        connection: 'closed',
        stopped: {cancelled: update.cancelled === true, note: str(update.note)},
        status: isTerminal(state.status) ? state.status : 'cancelled',
        notice: null,
        retry: null,
      };
    default:
      break;
  }
  if (typeof update.type !== 'string' || isDuplicate(state, update)) return state;
  let next = reduceUpdate(state, update);
  const seq = num(update.seq);
  if (seq !== null && seq > next.lastSeq) next = {...next, lastSeq: seq};
  return appendLog(next, update);
}

/**
 * The stepper's view of the phases: [{phase, state}] with state one of
 * done | active | pending | failed.
 */
export function phaseSteps(state) {
  const reachedIndex = PHASES.reduce((acc, p, i) => (state.phases[p] ? i : acc), -1);
  const failed = state.status === 'failed' || state.status === 'cancelled';
  return PHASES.map((phase, i) => {
    let s = 'pending';
    if (state.status === 'complete' || i < reachedIndex) {
      s = 'done';
    } else if (i === reachedIndex) {
      s = failed ? 'failed' : 'active';
    } else if (failed && i === reachedIndex + 1 && reachedIndex < 0) {
      s = 'failed';
    }
    return {phase, state: s};
  });
}

/** The specialists in activation order. */
export function specialistList(state) {
  return state.order.map((name) => state.specialists[name]);
}
