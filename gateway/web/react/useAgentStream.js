// useAgentStream.js: the React hook of the agentstream client library, an ES
// module with no build step that imports React by its bare name (a page's
// import map decides where React comes from; react.html shows one). Types:
// useAgentStream.d.ts; guide: docs/CLIENT.md ("React hook").
//
//   const {state, status, updates, cancel} = useAgentStream(question, {maxUpdates: 200});
//   const {state} = useAgentStream(null, {runId: 'req_4f1c9a'});   // follow a run
//
// Everything about the stream (reconnects with backoff, resume by seq,
// dedupe, the heartbeat watchdog, batch and gzip decoding) is the library's
// (agentstream.js startRun/attach); the hook only ties one stream to a
// component's life:
//  - A stream starts when the component mounts with a question (or a run id)
//    and is closed when it unmounts or the question, run id or restartKey
//    changes (the run itself goes on in the orchestrator for its grace
//    period: `cancel()` ends it). The other options are read when a stream
//    starts; handlers in them (onUpdate, on, ...) are always the latest
//    render's.
//  - React 18's StrictMode runs every effect twice in development (mount,
//    unmount, mount) in one go. The library opens its connection on the
//    next microtask, and a stream closed before that sends nothing, so the
//    first of the two streams never reaches the gateway: one run, not two.
//    Events of a replaced stream are ignored (its key is stale).

import {useCallback, useEffect, useMemo, useReducer, useRef} from 'react';

import {attach, startRun} from '../agentstream.js';

import {hookReducer, hookTarget, initialHookState, libraryOptions, maxUpdatesOf} from './hook_state.js';

export {HOOK_DEFAULTS, HOOK_STATUSES} from './hook_state.js';

// The library's handler options: the hook passes wrappers that call the
// latest render's handler.
const HANDLER_OPTIONS = ['onUpdate', 'onState', 'onStatus', 'onError'];

const NO_RUN = Object.freeze({outcome: 'failed', note: 'There is no run to cancel.', status: null});

/**
 * Follows a run: a new one for a question (a non-empty string), or the run
 * `options.runId` (or a first argument `{runId, after}`). Returns {state,
 * status, updates, updatesDropped, requestId, cancel, close}.
 */
export function useAgentStream(questionOrRunId, options = {}) {
  const target = hookTarget(questionOrRunId, options);
  const [hs, dispatch] = useReducer(hookReducer, target, initialHookState);
  const streamRef = useRef(null);
  const optionsRef = useRef(options);
  optionsRef.current = options || {};
  const targetRef = useRef(target);
  targetRef.current = target;

  useEffect(() => {
    const t = targetRef.current;
    dispatch({type: 'start', target: t});
    if (t.kind === 'idle') return undefined;
    const key = t.key;
    let live = true;
    const latest = (name) => (...args) => {
      const fn = optionsRef.current[name];
      if (live && typeof fn === 'function') fn(...args);
    };
    const o = libraryOptions(optionsRef.current);
    for (const name of HANDLER_OPTIONS) {
      if (typeof o[name] === 'function') o[name] = latest(name);
    }
    if (o.on && typeof o.on === 'object') {
      o.on = Object.fromEntries(Object.keys(o.on).map((type) => [type, (u) => {
                                                        const fn =
                                                            (optionsRef.current.on || {})[type];
                                                        if (live && typeof fn === 'function') fn(u);
                                                      }]));
    }
    const max = maxUpdatesOf(optionsRef.current);
    const stream =
        t.kind === 'run' ? attach(t.runId, {...o, after: t.after}) : startRun(t.question, o);
    streamRef.current = stream;
    stream.onUpdate((update) => {
      if (live) dispatch({type: 'update', key, update, max});
    });
    stream.onState((state) => {
      if (live) dispatch({type: 'state', key, state});
    });
    stream.onStatus((status) => {
      if (live) dispatch({type: 'status', key, status, state: stream.state});
    });
    return () => {
      live = false;
      if (streamRef.current === stream) streamRef.current = null;
      stream.close();
    };
  }, [target.key]);

  const cancel = useCallback(() => {
    const stream = streamRef.current;
    return stream ? stream.cancel() : Promise.resolve(NO_RUN);
  }, []);
  const close = useCallback(() => {
    if (streamRef.current) streamRef.current.close();
  }, []);

  // Between a render with a new question and its effect, show the new run's
  // start, not the old run's end.
  const fresh = useMemo(() => initialHookState(target), [target.key]);
  const current = hs.key === target.key ? hs : fresh;
  return {
    state: current.state,
    status: current.status,
    updates: current.updates,
    updatesDropped: current.updatesDropped,
    requestId: current.state.requestId,
    cancel,
    close,
  };
}
