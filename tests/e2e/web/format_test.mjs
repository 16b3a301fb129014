// Unit tests of the web client's formatting helpers (gateway/web/format.js).

import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {describeResult, formatColumn, formatDuration, formatField, formatNumber, formatScalar, formatSql, humanizeKey, summarizeUpdate} from '../../../gateway/web/format.js';

describe('humanizeKey', () => {
  test('snake and camel case become words with known acronyms', () => {
    assert.equal(humanizeKey('top_counterparties'), 'Top counterparties');
    assert.equal(humanizeKey('riskScore'), 'Risk score');
    assert.equal(humanizeKey('hhi'), 'HHI');
    assert.equal(humanizeKey('transaction_ids'), 'Transaction IDs');
    assert.equal(humanizeKey('share_pct'), 'Share %');
    assert.equal(humanizeKey(''), '');
  });
});

describe('formatNumber', () => {
  test('groups thousands and picks decimals by size', () => {
    assert.equal(formatNumber(186420), '186,420');
    assert.equal(formatNumber(171203.1), '171,203.10');
    assert.equal(formatNumber(7.4), '7.4');
    assert.equal(formatNumber(0.8612), '0.86');
    assert.equal(formatNumber(0.000123), '0.000123');
    assert.equal(formatNumber(NaN), 'NaN');
  });

  test('formatScalar covers every JSON scalar', () => {
    assert.equal(formatScalar(null), '—');
    assert.equal(formatScalar(true), 'yes');
    assert.equal(formatScalar('EUR'), 'EUR');
    assert.equal(formatScalar(12), '12');
  });

  test('a column of amounts gets two decimals throughout', () => {
    assert.deepEqual(formatColumn([28110, 30452.2, 'n/a']), ['28,110.00', '30,452.20', 'n/a']);
    assert.deepEqual(formatColumn([61, 64]), ['61', '64']);
    assert.deepEqual(formatColumn([0.5, 0.25]), ['0.5', '0.25']);
  });
});

describe('describeResult', () => {
  test('splits a result into figures, notes, tables, lists and groups', () => {
    const d = describeResult({
      query: 'totals',
      inflow: 1200.5,
      currency: 'EUR',
      rule: 'cash credits 8,000-9,999.99, at least 3 within 7 days',
      months: [{month: '2026-05', total: 10}, {month: '2026-06', n: 3}],
      countries: ['IR', 'KP'],
      transaction_ids: [1, 2, 3, 4, 5],
      empty: [],
      by_channel: {cash: 3},
    });
    assert.deepEqual(
        d.figures,
        [['Inflow', '1,200.50'], ['Currency', 'EUR'], ['Countries', 'IR, KP'], ['Empty', 'none']]);
    assert.deepEqual(d.notes, [['Rule', 'cash credits 8,000-9,999.99, at least 3 within 7 days']]);
    assert.equal(d.tables.length, 1);
    assert.equal(d.tables[0].label, 'Months');
    assert.deepEqual(d.tables[0].columns, ['month', 'total', 'n']);
    assert.deepEqual(d.lists, [{label: 'Transaction IDs', items: ['1', '2', '3', '4', '5']}]);
    assert.deepEqual(
        describeResult({account_id: 10421, total: 10421}).figures,
        [['Account ID', '10421'], ['Total', '10,421']]);
    assert.deepEqual(
        describeResult({transaction_ids: [88121, 88140, 88152, 88177]}).lists[0].items,
        ['88121', '88140', '88152', '88177']);
    assert.deepEqual(d.groups, [{label: 'By channel', value: {cash: 3}}]);
  });

  test('a non-object gives nothing to show', () => {
    assert.deepEqual(
        describeResult(null), {figures: [], notes: [], tables: [], groups: [], lists: []});
  });
});

describe('formatDuration and summarizeUpdate', () => {
  test('durations', () => {
    assert.equal(formatDuration(812), '812 ms');
    assert.equal(formatDuration(3120), '3.1 s');
    assert.equal(formatDuration(125000), '2 min 5 s');
    assert.equal(formatDuration(undefined), '');
  });

  test('one line per update kind', () => {
    assert.equal(
        summarizeUpdate(
            {type: 'progress', specialist: 'DataAnalyst', progress: 65, current_action: 'Trend'}),
        'DataAnalyst 65% — Trend');
    assert.equal(
        summarizeUpdate(
            {type: 'error', specialist: 'RiskAnalyst', code: 'unavailable', message: 'down'}),
        'RiskAnalyst: unavailable — down');
    assert.equal(summarizeUpdate({type: 'something_new'}), '');
  });
});

describe('formatField and formatSql', () => {
  test('identifiers verbatim, epoch timestamps and ISO times as dates', () => {
    assert.equal(formatField('account_id', 10421), '10421');
    assert.equal(formatField('from_ts', 1777593600), '2026-05-01');
    assert.equal(formatField('to_ts', 1777593600000), '2026-05-01');
    assert.equal(formatField('created_at', 1777639500), '2026-05-01 12:45');
    assert.equal(formatField('total', 1777593600), '1,777,593,600');
    assert.equal(formatField('from', '2026-05-01T00:00:00Z'), '2026-05-01');
    assert.equal(formatField('to', '2026-10-31T23:59:59Z'), '2026-10-31 23:59');
    assert.equal(formatField('note', 'not a date'), 'not a date');
  });

  test('a figure given in cents too is shown once', () => {
    const d = describeResult({inflow: 12.5, inflow_cents: 1250, fee_cents: 30});
    assert.deepEqual(d.figures.map(([label]) => label), ['Inflow', 'Fee cents']);
    const t = describeResult({rows: [{amount: 1, amount_cents: 100}]});
    assert.deepEqual(t.tables[0].columns, ['amount']);
  });

  test('one-line SQL gets a clause per line, string literals untouched', () => {
    assert.equal(
        formatSql('SELECT a FROM t WHERE b = \'x FROM y\' GROUP BY a ORDER BY a LIMIT 5'),
        'SELECT a\nFROM t\nWHERE b = \'x FROM y\'\nGROUP BY a\nORDER BY a\nLIMIT 5');
    assert.equal(formatSql('SELECT 1\n  FROM t'), 'SELECT 1\n  FROM t');
  });
});
