// DOM helpers for the web client: element construction, text and attribute
// updates that touch the DOM only on change, SQL highlighting, and the
// rendering of partial results as figures and tables. All text goes in through
// textContent: nothing from the stream is ever parsed as HTML.

import {describeResult, formatColumn, humanizeKey} from './format.js';


export const $ = (id) => document.getElementById(id);

/** Creates an element; strings among `children` become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') {
      el.className = value;
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key.startsWith('on')) {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function setText(el, text) {
  const t = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== t) el.textContent = t;
}

export function setAttr(el, name, value) {
  const v = String(value);
  if (el.getAttribute(name) !== v) el.setAttribute(name, v);
}

// SQL with keywords, strings, numbers and placeholders in spans.
const SQL_TOKEN =
    /('(?:[^']|'')*'|\b(?:SELECT|FROM|WHERE|AND|OR|NOT|GROUP|BY|ORDER|HAVING|LIMIT|OFFSET|AS|ON|JOIN|LEFT|INNER|OUTER|WITH|CASE|WHEN|THEN|ELSE|END|IN|IS|NULL|BETWEEN|LIKE|DESC|ASC|DISTINCT|SUM|COUNT|AVG|MIN|MAX|ABS|ROUND|COALESCE|STRFTIME|DATE|DATETIME|JULIANDAY|OVER|PARTITION|UNION|ALL|EXISTS|CAST|INTEGER|REAL|TOTAL)\b|\?\d*|:[A-Za-z_]\w*|\b\d+(?:\.\d+)?\b)/gi;

export function highlightSql(sql) {
  const code = h('code', {class: 'language-sql'});
  let last = 0;
  for (const m of sql.matchAll(SQL_TOKEN)) {
    if (m.index > last) code.append(document.createTextNode(sql.slice(last, m.index)));
    const tok = m[0];
    let cls = 'tok-kw';
    if (tok.startsWith('\''))
      cls = 'tok-str';
    else if (tok.startsWith('?') || tok.startsWith(':'))
      cls = 'tok-ph';
    else if (/^\d/.test(tok))
      cls = 'tok-num';
    code.append(h('span', {class: cls, text: tok}));
    last = m.index + tok.length;
  }
  if (last < sql.length) code.append(document.createTextNode(sql.slice(last)));
  return code;
}

export function renderFigures(figures) {
  return h(
      'dl', {class: 'figures'},
      figures.map(
          ([label, value]) =>
              h('div', {class: 'figure'}, h('dt', {text: label}),
                h('dd', {text: value, title: value}))));
}

export function renderTable(table, maxRows = 8) {
  const rows = table.rows.slice(0, maxRows);
  const columns = table.columns.map((c) => formatColumn(rows.map((row) => row[c]), c));
  const el =
      h('div', {class: 'table-wrap'},
        h('table', {},
          h('thead', {}, h('tr', {}, table.columns.map((c) => h('th', {text: humanizeKey(c)})))),
          h('tbody', {},
            rows.map(
                (row, r) => h(
                    'tr', {}, table.columns.map((c, i) => h('td', {
                                                  class: typeof row[c] === 'number' ? 'num' : null,
                                                  text: columns[i][r],
                                                })))))));
  if (table.rows.length > maxRows) {
    el.append(h('p', {class: 'more', text: `+ ${table.rows.length - maxRows} more rows`}));
  }
  return el;
}

/** A result object as figures, tables and nested groups. */
export function renderResult(result, depth = 0, skip = []) {
  const d = describeResult(result, skip);
  const box = h('div', {class: 'result-body'});
  if (d.figures.length) box.append(renderFigures(d.figures));
  if (d.notes.length) {
    box.append(
        h('dl', {class: 'notes'},
          d.notes.map(
              ([label, text]) =>
                  h('div', {class: 'note'}, h('dt', {text: label}), h('dd', {text})))));
  }
  // A result that is one table needs no second heading.
  const alone = d.tables.length === 1 &&
      d.figures.length + d.notes.length + d.lists.length + d.groups.length === 0;
  for (const t of d.tables) {
    box.append(
        alone ? renderTable(t) :
                h('div', {class: 'result-sub'}, h('h5', {text: t.label}), renderTable(t)));
  }
  for (const l of d.lists) {
    box.append(
        h('div', {class: 'result-sub'}, h('h5', {text: l.label}),
          h('div', {class: 'chips'},
            l.items.slice(0, 24).map((i) => h('span', {class: 'chip', text: i})))));
  }
  for (const g of d.groups) {
    box.append(
        h('div', {class: 'result-sub'}, h('h5', {text: g.label}),
          depth < 2 ? renderResult(g.value, depth + 1) :
                      h('pre', {class: 'json', text: JSON.stringify(g.value, null, 2)})));
  }
  return box;
}
