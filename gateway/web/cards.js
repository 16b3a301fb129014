// A specialist's card: created once when the specialist is activated, then
// updated in place from the reducer's state (so progress bars animate).

import {h, highlightSql, renderResult, setAttr, setText} from './dom.js';
import {formatDuration, formatSql, humanizeKey} from './format.js';

export const OUTCOME_LABELS = {
  ok: 'Done',
  failed: 'Failed',
  timed_out: 'Timed out',
  cancelled: 'Cancelled',
  partial: 'Partial',
};

export class SpecialistCard {
  constructor(name) {
    this.name = name;
    this.thoughtsShown = 0;
    this.toolCallsShown = 0;
    this.partials = null;
    this.errors = null;
    this.timeouts = null;

    this.icon = h('div', {class: 'avatar', 'aria-hidden': 'true'});
    this.title = h('h3', {class: 'card-title'});
    this.subtitle = h('div', {class: 'card-subtitle'});
    this.badge = h('span', {class: 'badge'});
    this.task = h('p', {class: 'task'});
    this.fill = h('div', {class: 'progress-fill'});
    this.track =
        h('div', {
          class: 'progress-track',
          role: 'progressbar',
          'aria-valuemin': '0',
          'aria-valuemax': '100',
          'aria-label': `${name} progress`,
        },
          this.fill);
    this.pct = h('span', {class: 'progress-pct'});
    this.action = h('p', {class: 'current-action'});
    this.alerts = h('div', {class: 'alerts'});
    this.thoughts = h('ol', {class: 'thoughts'});
    this.thoughtsSection =
        h('section', {class: 'card-section', hidden: true}, h('h4', {text: 'Thinking'}),
          this.thoughts);
    this.tools = h('div', {class: 'tool-calls'});
    this.toolsTitle = h('h4', {text: 'Tool calls'});
    this.toolsSection =
        h('section', {class: 'card-section', hidden: true}, this.toolsTitle, this.tools);
    this.results = h('div', {class: 'results'});
    this.resultsSection = h(
        'section', {class: 'card-section', hidden: true}, h('h4', {text: 'Results'}), this.results);
    this.foot = h('footer', {class: 'card-foot'});

    this.root =
        h('article', {class: 'specialist-card', 'data-specialist': name, 'data-progress': '0'},
          h('header', {class: 'card-head'}, this.icon,
            h('div', {class: 'card-titles'}, this.title, this.subtitle), this.badge),
          this.task, h('div', {class: 'progress'}, this.track, this.pct), this.action, this.alerts,
          this.thoughtsSection, this.toolsSection, this.resultsSection, this.foot);
  }

  // `runEnded`: the run is over, so a card without an outcome stopped early.
  update(s, runEnded) {
    const outcome = s.outcome || '';
    const failed = s.errors.length > 0 && !s.outcome;
    setAttr(this.root, 'data-progress', s.progress);
    setAttr(this.root, 'data-outcome', outcome);
    let cardState = 'running';
    let badge = 'Working';
    if (outcome) {
      cardState = outcome === 'ok' ? 'done' : 'failed';
      badge = OUTCOME_LABELS[outcome] || outcome;
    } else if (failed) {
      cardState = 'failed';
      badge = 'Error';
    } else if (runEnded) {
      cardState = 'stopped';
      badge = 'Stopped';
    }
    setAttr(this.root, 'data-state', cardState);
    setText(this.icon, s.icon || s.displayName.charAt(0));
    setText(this.title, s.displayName);
    setText(this.subtitle, s.instance ? `${s.name} · ${s.instance}` : s.name);
    setText(this.badge, badge);
    setAttr(this.badge, 'data-outcome', outcome || cardState);
    setText(this.task, s.task);
    this.task.hidden = !s.task;
    this.fill.style.width = `${s.progress}%`;
    setAttr(this.track, 'aria-valuenow', s.progress);
    setText(this.pct, `${s.progress}%`);
    setText(this.action, s.currentAction);
    this.action.hidden = !s.currentAction;
    setText(this.foot, s.durationMs !== null ? `Finished in ${formatDuration(s.durationMs)}` : '');
    this.foot.hidden = s.durationMs === null;

    if (s.errors !== this.errors || s.timeouts !== this.timeouts) {
      this.errors = s.errors;
      this.timeouts = s.timeouts;
      this.alerts.replaceChildren(
          ...s.errors.map(
              (e) =>
                  h('div', {class: 'alert alert-error', role: 'alert'},
                    h('strong', {text: `Error · ${e.code}`}), h('span', {text: e.message}),
                    e.retryable ? h('span', {class: 'alert-note', text: 'retryable'}) : null)),
          ...s.timeouts.map(
              (t) =>
                  h('div', {class: 'alert alert-timeout', role: 'alert'},
                    h('strong', {text: `Timeout · ${t.action || 'deadline'}`}),
                    h('span', {text: t.message}))));
    }

    const visible = s.thoughts.filter((t) => t.visible);
    for (; this.thoughtsShown < visible.length; this.thoughtsShown++) {
      this.thoughts.append(h('li', {text: visible[this.thoughtsShown].text}));
      this.thoughts.scrollTop = this.thoughts.scrollHeight;
    }
    this.thoughtsSection.hidden = visible.length === 0;

    for (; this.toolCallsShown < s.toolCalls.length; this.toolCallsShown++) {
      const call = s.toolCalls[this.toolCallsShown];
      for (const open of this.tools.querySelectorAll('details[open]')) open.open = false;
      this.tools.append(this.renderToolCall(call, this.toolCallsShown + 1));
    }
    setText(this.toolsTitle, `Tool calls · ${s.toolCalls.length}`);
    this.toolsSection.hidden = s.toolCalls.length === 0;

    if (s.partials !== this.partials) {
      this.partials = s.partials;
      this.results.replaceChildren(...s.partials.map(
          (p) => h(
              'div', {class: 'result'}, h('div', {class: 'result-title', text: humanizeKey(p.key)}),
              renderResult(p.result, 0, p.titleField ? [p.titleField] : []))));
    }
    this.resultsSection.hidden = s.partials.length === 0;
  }

  renderToolCall(call, n) {
    const body = [];
    if (call.sql !== null) {
      body.push(h('pre', {class: 'sql'}, highlightSql(formatSql(call.sql))));
      if (call.params !== null) {
        const params = Array.isArray(call.params) ?
            call.params.map((p) => JSON.stringify(p)).join(', ') :
            JSON.stringify(call.params);
        body.push(
            h('p', {class: 'params'}, h('span', {class: 'params-label', text: 'params'}),
              h('code', {text: params})));
      }
    } else {
      body.push(h('pre', {class: 'json', text: JSON.stringify(call.parameters, null, 2)}));
    }
    return h(
        'details', {class: 'tool-call', open: true},
        h('summary', {}, h('span', {class: 'tool-name', text: call.tool || 'tool'}),
          h('span', {class: 'tool-n', text: `#${n}`})),
        body);
  }
}
