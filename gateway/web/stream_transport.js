// The two ways agentstream.js opens one SSE connection, behind one shape:
//
//   const conn = openX(..., {onActivity, onOpen, onEvent, onEnd});
//   conn.close();  // after which no callback is called
//
//  - onActivity(): something arrived (for the watchdog): with fetch, every
//    chunk of bytes, heartbeat comments included; with EventSource, only
//    what it exposes: every event (agentstream.js asks for heartbeats as
//    events there) and `open`.
//  - onOpen({requestId}): the answer is a 200 stream (`requestId` from the
//    X-Request-Id header with fetch; null with EventSource, which hides
//    headers: the `connected` event names the run).
//  - onEvent({type, data, lastEventId}): one SSE event, in stream order.
//  - onEnd({reason, status, retryAfterMs, requestId}): the connection is over
//    and will not come back by itself. reason: 'eof' (the response ended),
//    'network' (fetch failed or the body broke), 'http' (a non-200 answer,
//    `status` set, and `wwwAuthenticate`: that header's value or null),
//    'transport' (EventSource reported a connection error).
//
// EventSource is never left to reconnect by itself: on its first connection
// error it is closed and the caller decides (its own backoff, retry limit and
// resume point), so every reconnect is counted and visible.

import {SseParser} from './sse_parser.js';

// Every event name the gateway sends (docs/GATEWAY.md "The wire"), plus
// `batch` (batching) and `heartbeat` (heartbeat=event).
export const EVENT_NAMES =
    Object.freeze(['connected', 'message', 'batch', 'error', 'timeout', 'done', 'heartbeat']);

/** Opens `url` with an EventSource class (the browser's, or MockEventSource). */
export function openEventSource(EventSourceClass, url, callbacks) {
  const es = new EventSourceClass(url);
  let over = false;
  const end = (info) => {
    if (over) return;
    over = true;
    es.close();
    callbacks.onEnd(info);
  };
  es.addEventListener('open', () => {
    if (over) return;
    callbacks.onActivity();
    callbacks.onOpen({requestId: null});
  });
  for (const name of EVENT_NAMES) {
    es.addEventListener(name, (event) => {
      if (over) return;
      // `error` is both the stream's error events (they carry data) and
      // EventSource's own connection errors (they do not).
      if (name === 'error' && typeof event.data !== 'string') {
        end({reason: 'transport', status: null, retryAfterMs: null, requestId: null});
        return;
      }
      callbacks.onActivity();
      callbacks.onEvent({type: name, data: event.data, lastEventId: event.lastEventId || ''});
    });
  }
  return {
    close() {
      over = true;
      es.close();
    },
  };
}

function retryAfterMs(headers) {
  const value = headers && typeof headers.get === 'function' ? headers.get('Retry-After') : null;
  if (value === null || value === undefined || !/^[0-9]+$/.test(value.trim())) return null;
  return Number(value.trim()) * 1000;
}

/**
 * Opens `url` with fetch (`init`: method, headers, body) and parses the
 * body's SSE itself, so it sees every byte, comments included.
 */
export function openFetch(fetchFn, url, init, callbacks) {
  const abort = new AbortController();
  let over = false;
  const end = (info) => {
    if (over) return;
    over = true;
    abort.abort();
    callbacks.onEnd(info);
  };
  const read = async () => {
    let response;
    try {
      response = await fetchFn(url, {...init, signal: abort.signal});
    } catch (e) {
      end({reason: 'network', status: null, retryAfterMs: null, requestId: null, error: e});
      return;
    }
    if (over) return;
    const requestId = response.headers ? response.headers.get('X-Request-Id') : null;
    callbacks.onActivity();
    if (response.status !== 200 || !response.body) {
      if (response.body && typeof response.body.cancel === 'function') {
        response.body.cancel().catch(() => {});
      }
      end({
        reason: 'http',
        status: response.status,
        retryAfterMs: retryAfterMs(response.headers),
        requestId,
        wwwAuthenticate: response.headers ? response.headers.get('WWW-Authenticate') : null,
      });
      return;
    }
    callbacks.onOpen({requestId});
    const parser = new SseParser({
      onEvent: (event) => {
        if (!over) callbacks.onEvent(event);
      },
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const {done, value} = await reader.read();
        if (over) return;
        if (done) break;
        callbacks.onActivity();
        parser.push(typeof value === 'string' ? value : decoder.decode(value, {stream: true}));
      }
      parser.push(decoder.decode());
      parser.end();
    } catch (e) {
      end({reason: 'network', status: null, retryAfterMs: null, requestId, error: e});
      return;
    }
    end({reason: 'eof', status: 200, retryAfterMs: null, requestId});
  };
  read();
  return {
    close() {
      over = true;
      abort.abort();
    },
  };
}
