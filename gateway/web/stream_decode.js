// Turns one SSE event of the gateway (docs/GATEWAY.md "The wire") into the
// updates it carries, for agentstream.js:
//
//  - an update (`event: message`, `connected`, `done`, `error`, `timeout`,
//    `heartbeat`): itself;
//  - `event: batch`, data {"type":"batch","request_id":...,"updates":[...]}
//    (the gateway's `batch_max`/`batch_ms`): its updates, in order;
//  - a compressed update (`compress=1`): {"type","seq",...,"compressed":true,
//    "encoding":"gzip","data":"<base64 of the gzipped JSON of the update>"}:
//    the update, inflated with DecompressionStream('gzip') (browsers, Node
//    18+). The envelope stays readable, so a caller can route and dedupe it
//    before paying for the inflate (needsInflate / inflateUpdate).
//
// No I/O apart from the inflate, no clock.

/** `<request_id>:<seq>` -> {requestId, seq}, or null when malformed. */
export function parseEventId(id) {
  if (typeof id !== 'string') return null;
  const colon = id.lastIndexOf(':');
  if (colon <= 0) return null;
  const digits = id.slice(colon + 1);
  if (!/^[0-9]{1,15}$/.test(digits)) return null;
  return {requestId: id.slice(0, colon), seq: Number(digits)};
}

/** The update's seq when it has one (> 0), else null (gateway events). */
export function seqOf(update) {
  const seq = update && update.seq;
  return Number.isInteger(seq) && seq > 0 ? seq : null;
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The updates an event's data carries, still possibly compressed: a batch is
 * expanded, anything else is one update. Throws on data that is not a JSON
 * object (or a batch without an `updates` array).
 */
export function splitEvent(eventName, data) {
  const parsed = JSON.parse(data);
  if (!isObject(parsed)) throw new Error('event data is not a JSON object');
  if (eventName === 'batch' || parsed.type === 'batch') {
    if (!Array.isArray(parsed.updates)) throw new Error('batch without an updates array');
    return parsed.updates.filter(isObject);
  }
  return [parsed];
}

/** True for the envelope of a compressed update. */
export function needsInflate(update) {
  return isObject(update) && update.compressed === true;
}

function base64ToBytes(b64) {
  if (typeof atob === 'function') {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

/** Inflates gzip bytes to text with DecompressionStream. */
export async function gunzipText(bytes) {
  if (typeof DecompressionStream !== 'function') {
    throw new Error('DecompressionStream is not available to inflate a compressed update');
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}

/**
 * The update a compressed envelope stands for. The inflated JSON is the
 * whole update; the envelope's `type`, `seq` and `request_id` fill in any
 * the inflated object lacks. Rejects on an unknown encoding or bad data.
 */
export async function inflateUpdate(envelope) {
  const encoding = envelope.encoding === undefined ? 'gzip' : envelope.encoding;
  if (encoding !== 'gzip') throw new Error(`unknown payload encoding: ${encoding}`);
  if (typeof envelope.data !== 'string') throw new Error('compressed update without data');
  const inner = JSON.parse(await gunzipText(base64ToBytes(envelope.data)));
  if (!isObject(inner)) throw new Error('compressed update is not a JSON object');
  const out = {...inner};
  for (const key of ['type', 'request_id', 'seq']) {
    if (out[key] === undefined && envelope[key] !== undefined) out[key] = envelope[key];
  }
  return out;
}
