// Pure helpers that turn the specialists' free-form JSON results into
// readable pieces (labels, numbers, tables). No DOM: app.js builds elements
// from what these return, and Node tests them (tests/e2e/web/).

const ACRONYMS = new Map([
  ['aml', 'AML'],
  ['hhi', 'HHI'],
  ['id', 'ID'],
  ['ids', 'IDs'],
  ['pii', 'PII'],
  ['sql', 'SQL'],
  ['iban', 'IBAN'],
  ['kyc', 'KYC'],
  ['ms', 'ms'],
  ['pct', '%'],
  ['cv', 'CV'],
  ['eur', 'EUR'],
]);

/** "top_counterparties" -> "Top counterparties", "hhi" -> "HHI". */
export function humanizeKey(key) {
  const words = String(key)
                    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
                    .split(/[_\s.-]+/)
                    .filter((w) => w.length > 0);
  if (words.length === 0) return '';
  return words
      .map((w, i) => {
        const lower = w.toLowerCase();
        if (ACRONYMS.has(lower)) return ACRONYMS.get(lower);
        return i === 0 ? lower.charAt(0).toUpperCase() + lower.slice(1) : lower;
      })
      .join(' ');
}

const INTEGER = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});
const DECIMAL = new Intl.NumberFormat('en-US', {maximumFractionDigits: 2});
const FIXED2 = new Intl.NumberFormat('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2});
const SMALL = new Intl.NumberFormat('en-US', {maximumSignificantDigits: 3});

/**
 * A number for people: grouped thousands; fractions of large amounts with two
 * fixed decimals (186,420.50), of small ones with up to two (0.86, 7.4).
 */
export function formatNumber(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return INTEGER.format(n);
  if (Math.abs(n) >= 100) return FIXED2.format(n);
  if (Math.abs(n) < 0.01 && n !== 0) return SMALL.format(n);
  return DECIMAL.format(n);
}

/** Any scalar JSON value as text. */
export function formatScalar(v) {
  return formatScalarValue(v);
}

// Epoch seconds (or milliseconds) in keys named like timestamps.
function isTimestampKey(key) {
  return /(^|_)(ts|at|time|timestamp)$/.test(String(key)) || /[a-z](Ts|At)$/.test(String(key));
}

function formatEpoch(n) {
  let ms = null;
  if (n >= 1e9 && n < 1e10) ms = n * 1000;
  if (n >= 1e12 && n < 1e13) ms = n;
  if (ms === null) return null;
  return shortenIso(new Date(ms).toISOString());
}

// "2026-05-01T00:00:00Z" -> "2026-05-01"; "2026-05-01T13:45:10.5Z" -> "2026-05-01 13:45".
function shortenIso(text) {
  const m =
      /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (!m) return text;
  return m[2] === '00:00' && (!m[3] || /^:00(\.0+)?$/.test(m[3])) ? m[1] : `${m[1]} ${m[2]}`;
}

/** A value of a named field: identifiers verbatim, timestamps as dates. */
export function formatField(key, v) {
  if (isIdKey(key)) return v === null || v === undefined ? '—' : String(v);
  if (typeof v === 'number' && isTimestampKey(key)) {
    const date = formatEpoch(v);
    if (date !== null) return date;
  }
  return formatScalarValue(v);
}

function formatScalarValue(v) {
  if (typeof v === 'string') return shortenIso(v);
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

/** "id", "transaction_ids", "accountId": values that are identifiers. */
export function isIdKey(key) {
  return /(^|_)ids?$|[a-z]Ids?$/.test(String(key));
}

export function isScalar(v) {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** True for a non-empty array whose items are all objects: shown as a table. */
export function isTable(v) {
  return Array.isArray(v) && v.length > 0 && v.every(isPlainObject);
}

/**
 * Formats a table column's values alike: when any of them has a fraction and
 * they are amounts (>= 100 somewhere), all get two decimals.
 */
export function formatColumn(values, key = '') {
  const numbers = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  const fixed = !isIdKey(key) && numbers.some((v) => !Number.isInteger(v)) &&
      numbers.some((v) => Math.abs(v) >= 100);
  return values.map(
      (v) =>
          (fixed && typeof v === 'number' && Number.isFinite(v) ? FIXED2.format(v) :
                                                                  formatField(key, v)));
}

/** The columns of a table: every key of every row, in first-seen order. */
export function tableColumns(rows) {
  const columns = [];
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      if (!columns.includes(key)) columns.push(key);
    }
  }
  return columns.filter((c) => !(/_cents$/.test(c) && columns.includes(c.slice(0, -6))));
}

// Text values longer than this are shown as a line of their own, not a tile.
const MAX_FIGURE_TEXT = 24;

/**
 * Splits a result object into what the view shows:
 *   figures: [[label, text]] for numbers, short texts and short scalar lists,
 *   notes:   [[label, text]] for longer texts,
 *   tables:  [{label, columns, rows}] for lists of objects,
 *   groups:  [{label, value}] for nested objects,
 *   lists:   [{label, items}] for longer lists of scalars.
 * `skip` names keys left out (e.g. "query", shown as the title).
 */
export function describeResult(result, skip = ['query']) {
  const out = {figures: [], notes: [], tables: [], groups: [], lists: []};
  if (!isPlainObject(result)) return out;
  for (const [key, value] of Object.entries(result)) {
    if (skip.includes(key)) continue;
    const label = humanizeKey(key);
    // A figure also given in cents is shown once, in units.
    if (/_cents$/.test(key) && Object.hasOwn(result, key.slice(0, -6))) continue;
    const fmt = (v) => formatField(key, v);
    if (isScalar(value)) {
      const text = fmt(value);
      (text.length > MAX_FIGURE_TEXT ? out.notes : out.figures).push([label, text]);
    } else if (isTable(value)) {
      out.tables.push({label, columns: tableColumns(value), rows: value});
    } else if (Array.isArray(value)) {
      if (value.length === 0) {
        out.figures.push([label, 'none']);
      } else if (
          value.every(isScalar) && value.length <= 3 &&
          value.map(fmt).join(', ').length <= MAX_FIGURE_TEXT) {
        out.figures.push([label, value.map(fmt).join(', ')]);
      } else {
        out.lists.push(
            {label, items: value.map((v) => (isScalar(v) ? fmt(v) : JSON.stringify(v)))});
      }
    } else if (isPlainObject(value)) {
      out.groups.push({label, value});
    }
  }
  return out;
}

/** "1234" ms -> "1.2 s". */
export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  const s = Math.round((ms % 60000) / 1000);
  return `${m} min ${s} s`;
}

/** A one-line summary of an update for the raw event log. */
export function summarizeUpdate(u) {
  switch (u.type) {
    case 'status':
      return `${u.status}${u.message ? ` — ${u.message}` : ''}`;
    case 'specialist_activated':
      return `${u.specialist}: ${u.task || ''}`;
    case 'progress':
      return `${u.specialist} ${u.progress}%${u.current_action ? ` — ${u.current_action}` : ''}`;
    case 'thinking':
      return `${u.agent || u.specialist}: ${u.thought}`;
    case 'tool_call':
      return `${u.specialist} → ${u.tool}`;
    case 'partial_result':
      return `${u.specialist}${u.result && u.result.query ? ` · ${u.result.query}` : ''}`;
    case 'synthesis':
      return u.message || '';
    case 'specialist_complete':
      return `${u.specialist}: ${u.outcome} in ${formatDuration(u.duration_ms)}`;
    case 'complete':
      return `outcome ${u.outcome}`;
    case 'error':
      return `${u.specialist ? `${u.specialist}: ` : ''}${u.code} — ${u.message}`;
    case 'timeout':
      return `${u.specialist ? `${u.specialist}: ` : ''}${u.action} — ${u.message}`;
    case 'connected':
      return `request ${u.request_id}`;
    case 'done':
      return `stream ended (${u.status})`;
    default:
      return '';
  }
}

const SQL_BREAK_BEFORE =
    /\s+(?=(?:FROM|WHERE|GROUP BY|ORDER BY|HAVING|LIMIT|(?:LEFT |INNER |CROSS )?JOIN|UNION(?: ALL)?|SELECT)\b)/g;

/**
 * SQL as written when it already has line breaks; a one-line statement gets
 * one clause per line (FROM, WHERE, JOIN, GROUP BY, ...). Keywords inside
 * string literals are left alone.
 */
export function formatSql(sql) {
  const text = String(sql);
  if (text.includes('\n')) return text;
  // Split around string literals so that only code is touched.
  return text.split(/('(?:[^']|'')*')/)
      .map((part, i) => (i % 2 === 1 ? part : part.replace(SQL_BREAK_BEFORE, '\n')))
      .join('')
      .trim();
}
