// An incremental parser of the text/event-stream format, as the HTML standard
// ("Server-sent events", "Interpreting an event stream") defines it, for the
// clients that read a response body themselves (agentstream.js's fetch
// transport, MockEventSource's recordings). Text goes in as it arrives, in
// pieces cut anywhere (inside a line, between the CR and the LF of a CRLF);
// events come out whole.
//
//   const parser = new SseParser({onEvent, onComment, onRetry});
//   parser.push(text); ... parser.end();
//
// Lines end with CRLF, LF or CR. `data:` lines of one event are joined with
// LF; `event:` names it (default "message"); `id:` sets the last event id,
// which persists across events (an id containing NUL is ignored); `retry:`
// (digits only) reports a reconnection time; a line starting with ':' is a
// comment (the gateway's heartbeats, docs/GATEWAY.md "The wire"); a blank
// line dispatches the event, unless it has no data. An event cut off by the
// end of the stream (no blank line after it) is discarded, as EventSource
// does. A leading BOM is skipped. Pure: no I/O, no clock.

/**
 * One dispatched event: `type` (the event name), `data`, `lastEventId` (the
 * last id seen on the stream, as EventSource reports it) and `id` (the id
 * field of this event's own block, or null when it had none).
 */
export class SseParser {
  constructor({onEvent = () => {}, onComment = () => {}, onRetry = () => {}} = {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.onRetry = onRetry;
    this.buffer = '';
    this.started = false;
    // The last piece ended with CR: a LF starting the next one belongs to it.
    this.skipLf = false;
    this.lastEventId = '';
    this.resetEvent();
  }

  resetEvent() {
    this.eventType = '';
    this.data = '';
    this.hasData = false;
    this.blockId = null;
  }

  /** Feeds the next piece of the stream's text. */
  push(text) {
    if (typeof text !== 'string' || text.length === 0) return;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.skipLf && text[0] === '\n') text = text.slice(1);
    this.skipLf = false;
    const buf = this.buffer + text;
    const breaks = /\r\n|\r|\n/g;
    let start = 0;
    let m;
    while ((m = breaks.exec(buf)) !== null) {
      // A CR as the last character ends a line; a LF starting the next piece
      // belongs to it and must not make a second (blank) line.
      if (m[0] === '\r' && m.index === buf.length - 1) this.skipLf = true;
      this.line(buf.slice(start, m.index));
      start = breaks.lastIndex;
    }
    this.buffer = buf.slice(start);
  }

  /** The stream ended: an unterminated event is dropped. */
  end() {
    this.buffer = '';
    this.skipLf = false;
    this.resetEvent();
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line[0] === ':') {
      this.onComment(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data += value + '\n';
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.lastEventId = value;
          this.blockId = value;
        }
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
        break;  // Unknown fields are ignored.
    }
  }

  dispatch() {
    if (!this.hasData) {
      this.resetEvent();
      return;
    }
    const event = {
      type: this.eventType || 'message',
      data: this.data.slice(0, -1),
      lastEventId: this.lastEventId,
      id: this.blockId,
    };
    this.resetEvent();
    this.onEvent(event);
  }
}

/** Parses a whole recorded stream: [{kind: 'event', ...event} | {kind: 'comment', text}]. */
export function parseSse(text) {
  const out = [];
  const parser = new SseParser({
    onEvent: (e) => out.push({kind: 'event', ...e}),
    onComment: (c) => out.push({kind: 'comment', text: c}),
    onRetry: (ms) => out.push({kind: 'retry', ms}),
  });
  parser.push(text);
  // A recording saved to its end has a blank line after its last event; one
  // cut mid-event keeps what is whole.
  parser.end();
  return out;
}
