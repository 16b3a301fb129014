// What agentstream.js asks the gateway for: the URLs and POST bodies of a new
// run, a resume and a cancel, from the library's options (docs/CLIENT.md
// "Options"; the parameters are docs/GATEWAY.md's "Endpoints"). Pure
// functions on top of session.js's URLs.

import {HttpError, parseChallenge, resolveToken, withBearer} from './auth.js';
import {cancelUrl, chatUrl, resumeUrl} from './session.js';

/** The update kinds of the contract (proto/agentstream/v1/update.proto, oneof kind). */
export const UPDATE_TYPES = Object.freeze([
  'status',
  'specialist_activated',
  'progress',
  'thinking',
  'tool_call',
  'partial_result',
  'synthesis',
  'specialist_complete',
  'complete',
  'error',
  'timeout',
]);

/** What the gateway sends whatever `types` says. */
export const ALWAYS_SENT_TYPES = Object.freeze(['connected', 'done', 'error', 'timeout']);

/** The `types` option checked: a copy, or null for all kinds. Throws on unknown names. */
export function checkTypes(types) {
  if (types === undefined || types === null) return null;
  if (!Array.isArray(types) || types.length === 0) {
    throw new TypeError('types must be a non-empty array of update kinds');
  }
  const unknown = types.filter((t) => !UPDATE_TYPES.includes(t));
  if (unknown.length > 0) throw new TypeError(`unknown update types: ${unknown.join(', ')}`);
  return [...types];
}

/** `path` under `baseUrl` ('' keeps it relative to the page). */
export function joinUrl(baseUrl, path) {
  if (!baseUrl) return path;
  return baseUrl.endsWith('/') ? baseUrl + path : `${baseUrl}/${path}`;
}

// Sets the stream options (`types`, batching, compression, heartbeat style)
// on `params` (a URLSearchParams). `heartbeat`: 'event', 'comment' or null.
function setStreamParams(params, options, types, heartbeat) {
  if (types) params.set('types', types.join(','));
  if (options.batchMax !== undefined) params.set('batch_max', String(options.batchMax));
  if (options.batchMs !== undefined) params.set('batch_ms', String(options.batchMs));
  if (options.compress) params.set('compress', '1');
  if (heartbeat) params.set('heartbeat', heartbeat);
}

function relative(url) {
  return `${url.pathname.slice(1)}${url.search}`;
}

/** `GET api/chat/stream?message=...` with every option of a new run. */
export function startUrl(question, options, types, heartbeat) {
  const url = new URL(chatUrl(question, options.specialists || []), 'http://x/');
  if (options.runOptions !== undefined) {
    url.searchParams.set('options', JSON.stringify(options.runOptions));
  }
  if (options.onDisconnect) url.searchParams.set('on_disconnect', options.onDisconnect);
  setStreamParams(url.searchParams, options, types, heartbeat);
  return joinUrl(options.baseUrl, relative(url));
}

/** `GET api/runs/{id}/stream?after=N` with the stream options. */
export function followUrl(requestId, lastSeq, options, types, heartbeat) {
  const url = new URL(resumeUrl(requestId, lastSeq), 'http://x/');
  setStreamParams(url.searchParams, options, types, heartbeat);
  return joinUrl(options.baseUrl, relative(url));
}

/** The URL of `POST api/chat/stream`. */
export function postUrl(options) {
  return joinUrl(options.baseUrl, 'api/chat/stream');
}

/** The JSON body of `POST api/chat/stream`. */
export function postBody(question, options, types, heartbeat) {
  const body = {message: question};
  if (options.specialists && options.specialists.length > 0) {
    body.specialists = [...options.specialists];
  }
  if (options.runOptions !== undefined) body.options = options.runOptions;
  if (options.onDisconnect) body.on_disconnect = options.onDisconnect;
  if (types) body.types = [...types];
  if (options.batchMax !== undefined) body.batch_max = options.batchMax;
  if (options.batchMs !== undefined) body.batch_ms = options.batchMs;
  if (options.compress) body.compress = true;
  if (heartbeat) body.heartbeat = heartbeat;
  return body;
}

/** The URL of `DELETE api/runs/{id}`. */
export function deleteUrl(requestId, options) {
  return joinUrl(options.baseUrl, cancelUrl(requestId));
}

/** The URL of `GET api/specialists`. */
export function specialistsUrl(options) {
  return joinUrl(options.baseUrl || '', 'api/specialists');
}

/**
 * `GET api/specialists` with the `token` option's bearer token: resolves to
 * the parsed body; rejects with an HttpError for any other answer than 200
 * (`reason: 'unauthorized'` and the challenge for a 401), or fetch's error.
 */
export async function fetchSpecialists(options = {}) {
  const fetchFn = options.fetch || (typeof fetch === 'function' ? fetch.bind(globalThis) : null);
  if (!fetchFn) throw new TypeError('no fetch to ask with');
  const token = await resolveToken(options.token);
  const response = await fetchFn(
      specialistsUrl(options), {headers: withBearer({Accept: 'application/json'}, token)});
  if (response.status !== 200) {
    const header = response.headers ? response.headers.get('WWW-Authenticate') : null;
    throw new HttpError(response.status, parseChallenge(header), token !== '');
  }
  return response.json();
}
