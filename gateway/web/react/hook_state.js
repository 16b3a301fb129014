// hook_state.js: the pure parts of useAgentStream (useAgentStream.js): what
// the hook follows, its status, and the reducer of its own state (the
// library's state, the hook's status, the bounded list of updates). No React
// and no DOM, so Node tests it as it is (tests/e2e/web/react_hook_test.mjs).
// docs/CLIENT.md ("React hook") describes the hook.

import {initialState, reduce} from '../reducer.js';

/** The hook's own options and their defaults (the rest go to the library). */
export const HOOK_DEFAULTS = Object.freeze({
  // How many updates `updates` keeps; the oldest are dropped (and counted).
  maxUpdates: 500,
});

/** Every value of the hook's `status`. */
export const HOOK_STATUSES = Object.freeze(
    ['idle', 'connecting', 'streaming', 'reconnecting', 'done', 'error', 'cancelled']);

// The hook's options that the library does not take.
const HOOK_ONLY = ['maxUpdates', 'runId', 'after', 'restartKey'];

/**
 * What the hook follows: {kind: 'idle'} (nothing: an empty question),
 * {kind: 'question', question}, or {kind: 'run', runId, after}; `key` changes
 * exactly when a new stream must be started. A run id comes from
 * `options.runId` or a first argument `{runId, after}`; `options.restartKey`
 * starts the same question again when it changes.
 */
export function hookTarget(questionOrRunId, options = {}) {
  const o = options || {};
  let target = {kind: 'idle'};
  const arg = questionOrRunId;
  if (typeof o.runId === 'string' && o.runId !== '') {
    target = {kind: 'run', runId: o.runId, after: afterOf(o.after)};
  } else if (
      arg !== null && typeof arg === 'object' && typeof arg.runId === 'string' &&
      arg.runId !== '') {
    target = {kind: 'run', runId: arg.runId, after: afterOf(arg.after ?? o.after)};
  } else if (typeof arg === 'string' && arg.trim() !== '') {
    target = {kind: 'question', question: arg};
  }
  const restart = o.restartKey === undefined ? null : String(o.restartKey);
  const key = JSON.stringify(
      [target.kind, target.question ?? target.runId ?? null, target.after ?? 0, restart]);
  return {...target, key};
}

function afterOf(v) {
  return Number.isInteger(v) && v > 0 ? v : 0;
}

/** The options to pass to startRun()/attach(): the hook's own removed. */
export function libraryOptions(options = {}) {
  const out = {};
  for (const [k, v] of Object.entries(options || {})) {
    if (!HOOK_ONLY.includes(k)) out[k] = v;
  }
  return out;
}

/** The bound of `updates`: options.maxUpdates when a positive integer. */
export function maxUpdatesOf(options = {}) {
  const n = options ? options.maxUpdates : undefined;
  return Number.isInteger(n) && n > 0 ? n : HOOK_DEFAULTS.maxUpdates;
}

/**
 * The hook's status from the library's (connecting | open | reconnecting |
 * closed | failed) and the run's state: a closed stream is `cancelled` when
 * the run was cancelled, `error` when it failed, else `done`.
 */
export function hookStatus(libraryStatus, state) {
  switch (libraryStatus) {
    case 'connecting':
      return 'connecting';
    case 'open':
      return 'streaming';
    case 'reconnecting':
      return 'reconnecting';
    case 'failed':
      return 'error';
    case 'closed': {
      const status = state ? state.status : null;
      if (status === 'cancelled') return 'cancelled';
      if (status === 'failed') return 'error';
      return 'done';
    }
    default:
      return 'idle';
  }
}

/** `list` with `item` appended and at most `max` items (the oldest go). */
export function appendBounded(list, item, max) {
  if (list.length < max) return [...list, item];
  return [...list.slice(list.length - max + 1), item];
}

/** The library's state before the first update of `target`. */
export function startState(target) {
  if (target.kind === 'question')
    return reduce(initialState(), {type: 'reset', question: target.question});
  if (target.kind === 'run') {
    return {...reduce(initialState(), {type: 'reset', question: ''}), requestId: target.runId};
  }
  return initialState();
}

/** The hook's state for `target` before its stream said anything. */
export function initialHookState(target) {
  return {
    key: target.key,
    state: startState(target),
    status: target.kind === 'idle' ? 'idle' : 'connecting',
    libraryStatus: null,
    updates: [],
    updatesDropped: 0,
  };
}

/**
 * The hook's reducer. Actions: {type: 'start', target}, and from the stream
 * of `key`: {type: 'state', key, state}, {type: 'update', key, update, max},
 * {type: 'status', key, status, state}. Actions of another key (a stream
 * already replaced) change nothing.
 */
export function hookReducer(hs, action) {
  if (action.type === 'start') {
    return action.target.key === hs.key && hs.libraryStatus === null ?
        hs :
        initialHookState(action.target);
  }
  if (action.key !== hs.key) return hs;
  switch (action.type) {
    case 'state': {
      const next = {...hs, state: action.state};
      // A closed stream's status depends on the run's ending.
      if (hs.libraryStatus === 'closed') next.status = hookStatus('closed', action.state);
      return next;
    }
    case 'update': {
      const max =
          Number.isInteger(action.max) && action.max > 0 ? action.max : HOOK_DEFAULTS.maxUpdates;
      const dropped = hs.updates.length + 1 > max ? hs.updates.length + 1 - max : 0;
      return {
        ...hs,
        updates: appendBounded(hs.updates, action.update, max),
        updatesDropped: hs.updatesDropped + dropped,
      };
    }
    case 'status': {
      const state = action.state || hs.state;
      return {
        ...hs,
        state,
        libraryStatus: action.status,
        status: hookStatus(action.status, state),
      };
    }
    default:
      return hs;
  }
}
