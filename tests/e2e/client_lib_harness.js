// The consumer client_lib_e2e.py runs in Chromium: the body of a WebDriver
// script (arguments[0] is its config), run in a page of the gateway's origin.
// It imports the library the gateway serves, starts one run with the
// config's options and records what a consumer of the library sees, in
// window.__lib:
//   updates      [[type, seq or null], ...] as onUpdate delivered them
//   statuses     [{status, reason, attempt, resumed}, ...] from onStatus
//   connections  one per connection the library opened: its URL (and with
//                fetch its Last-Event-ID), and the library's lastSeq and the
//                last seq delivered when it opened
//   rawEvents    {event name: count} as the EventSource received them
//   errors       what onError reported
//   finished     what run.finished resolved to (a summary of the state)
// It watches the library through its public API and its injectable
// EventSource/fetch; it changes nothing the library does.

const config = arguments[0];
const rec = {
  updates: [],
  statuses: [],
  connections: [],
  rawEvents: {},
  compressedOnWire: 0,
  envelopesDelivered: 0,
  errors: [],
  finished: null,
  importError: null,
};
window.__lib = rec;
window.__libRun = null;
let run = null;
const lastDelivered = () => {
  for (let i = rec.updates.length - 1; i >= 0; i--) {
    if (rec.updates[i][1] !== null) return rec.updates[i][1];
  }
  return 0;
};
const noteConnection = (url, lastEventId) => {
  rec.connections.push({
    url: String(url),
    lastEventId,
    lastSeq: run ? run.lastSeq : 0,
    delivered: lastDelivered(),
  });
};

import('/agentstream.js').then((lib) => {
  const options = {...config.options};
  if (options.transport === 'fetch') {
    const realFetch = window.fetch.bind(window);
    options.fetch = (url, init = {}) => {
      if ((init.method || 'GET') !== 'DELETE') {
        noteConnection(url, (init.headers && init.headers['Last-Event-ID']) || null);
      }
      return realFetch(url, init);
    };
  } else {
    options.EventSource = class RecordingEventSource extends EventSource {
      constructor(url, init) {
        super(url, init);
        noteConnection(url, null);
        for (const name of ['connected', 'message', 'batch', 'heartbeat', 'done']) {
          this.addEventListener(name, (ev) => {
            rec.rawEvents[name] = (rec.rawEvents[name] || 0) + 1;
            // Payloads that came compressed (compress: true), before the
            // library inflated them.
            const packed = String(ev.data || '').match(/"compressed":true/g);
            rec.compressedOnWire += packed ? packed.length : 0;
          });
        }
      }
    };
  }
  run = lib.startRun(config.question, {
    ...options,
    onUpdate: (u) => {
      rec.updates.push([u.type, Number.isInteger(u.seq) ? u.seq : null]);
      // An update that came compressed arrives inflated: no envelope left.
      if (u.compressed) rec.envelopesDelivered += 1;
    },
    onStatus: (status, detail) => rec.statuses.push({
      status,
      reason: detail.reason || null,
      attempt: detail.attempt === undefined ? null : detail.attempt,
      resumed: detail.resumed === true,
    }),
    onError: (error, detail) => rec.errors.push(`${error} (${detail && detail.where})`),
  });
  window.__libRun = run;
  run.finished.then(({status, state}) => {
    rec.finished = {
      status,
      runStatus: state.status,
      outcome: state.outcome,
      answer: state.answer,
      requestId: run.requestId,
      lastSeq: run.lastSeq,
      duplicates: run.duplicates,
      reconnects: run.reconnects,
      errors: state.errors.map((e) => `${e.code}: ${e.message}`),
      specialists: state.order.map((name) => ({
        name,
        progress: state.specialists[name].progress,
        outcome: state.specialists[name].outcome,
      })),
    };
  });
}, (e) => {
  rec.importError = String(e);
});
return true;
