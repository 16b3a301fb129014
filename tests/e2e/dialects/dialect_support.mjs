// What the dialect client tests share (tests/e2e/dialects/*_client_test.mjs):
// the gateway's URL, checks that fail the test, bounded waits, and our own
// wire read directly (GET /api/runs/{id}/stream) to compare a dialect's
// rendering of a run with the run itself.

export const BASE = process.env.AGENTSTREAM_URL;
if (!BASE) {
  console.error('AGENTSTREAM_URL is not set (dialects_e2e.py sets it)');
  process.exit(2);
}

// Under --auth (dialects_e2e.py --auth) the token every request carries;
// AUTH is the header to add ({} without auth).
export const TOKEN = process.env.AGENTSTREAM_TOKEN || '';
export const AUTH = TOKEN ? {Authorization: `Bearer ${TOKEN}`} : {};

// The question of the web page's demo: planned onto DataAnalyst,
// RiskAnalyst and ComplianceExpert.
export const QUESTION =
    'Assess the risk and AML compliance of account ACC-1042 over the last 6 months';
export const EXPECTED_SPECIALISTS = ['DataAnalyst', 'RiskAnalyst', 'ComplianceExpert'];

// A run long enough to be cut, cancelled or resubscribed to mid-way: the
// Synthetic specialist, paced (count results at rate per second).
export function slowRun(count = 40, rate = 10) {
  return {specialists: ['Synthetic'], options: {count, rate, size: 64}};
}

let checks = 0;
export function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
  checks += 1;
  console.log(`ok ${checks}: ${msg}`);
}

export function log(msg) {
  console.log(`# ${msg}`);
}

export async function waitFor(what, fn, timeoutMs = 30000, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Every update of run `runId` on our own wire, from its log (the run has
// ended, or this waits for it to): [{type, seq, ...}].
export async function ourUpdates(runId, timeoutMs = 60000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const r = await fetch(`${BASE}/api/runs/${encodeURIComponent(runId)}/stream`,
                          {signal: ctl.signal, headers: AUTH});
    if (r.status !== 200) throw new Error(`GET our stream of ${runId}: ${r.status}`);
    const text = await r.text();
    const updates = [];
    for (const block of text.split('\n\n')) {
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event === 'message' && data.length) updates.push(JSON.parse(data.join('\n')));
    }
    return updates;
  } finally {
    clearTimeout(timer);
  }
}

// The `complete` update of run `runId` on our own wire.
export async function ourComplete(runId) {
  const complete = (await ourUpdates(runId)).find((u) => u.type === 'complete');
  if (!complete) throw new Error(`run ${runId} has no complete`);
  return complete;
}

export async function main(name, fn) {
  try {
    await fn();
    console.log(`${name}: PASSED (${checks} checks)`);
    process.exit(0);
  } catch (e) {
    console.error(`${name}: FAILED: ${e && e.stack || e}`);
    process.exit(1);
  }
}
