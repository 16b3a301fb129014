"""The table and the plot of tests/bench/run_all.py.

Figures are the `figures` objects stream_bench writes with --json-out; a
figure absent from a repetition (it failed) is left out of the median.
Targets are issue 11's, as docs/BENCHMARKS.md states them; they are shown
and judged here, never asserted by a test.
"""

import os
import statistics
import subprocess

SYSTEMS = ['agentstream', 'peer asap', 'peer as written']


def median(values):
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def fmt(v):
  if v is None:
    return 'not measured'
  if abs(v) >= 1000:
    return f'{v:,.0f}'
  return f'{v:.3g}'


def at_most(limit):
  return lambda v, ctx: v <= limit


def at_least(limit):
  return lambda v, ctx: v >= limit


# The batching the throughput scenario is also run with (issue 12: events/s
# with and without batching at the same 50 runs, side by side).
BATCH_QUERY = 'batch_max=50&batch_ms=5'


def rows(args):
  """(figure, target, scenario, key, higher is better, met(v, ctx))."""
  tput = f'{args.runs} runs x {args.count} x {args.size} B'
  lat = f'{args.latency_runs} runs x {args.latency_rate:g}/s'
  return [
      (f'events/s, {tput}, as fast as possible', '>= 150,000 and >= 3x peer',
       'throughput', 'events_per_s', True,
       lambda v, ctx: v >= 150000 and ctx['best_peer'] is not None and
       v >= 3 * ctx['best_peer']),
      (f'events/s, the same with batching ({BATCH_QUERY})',
       'a figure (issue 12)', 'throughput_batched', 'events_per_s', True,
       None),
      (f'latency p50, {lat} (ms)', '<= 0.2', 'latency', 'latency_p50_ms',
       False, at_most(0.2)),
      (f'latency p99, {lat} (ms)', '<= 1', 'latency', 'latency_p99_ms',
       False, at_most(1)),
      (f'latency p99 at half the saturated rate, {args.runs} runs (ms)',
       '<= 10', 'half', 'latency_p99_ms', False, at_most(10)),
      (f'open streams (live runs, heartbeats), {args.streams} asked over '
       f'{args.streams_window_ms} ms',
       '>= 10,000', 'streams', 'streams_open', True, at_least(10000)),
      ('of which saw a heartbeat', 'all', 'streams',
       'streams_with_heartbeat', True, lambda v, ctx: v >= args.streams),
      ('/healthz p99 while they are open (ms)', '<= 10', 'streams',
       'healthz_p99_ms', False, at_most(10)),
      ('memory per open stream, gateway + orchestrator (KiB)', '<= 40',
       'streams', 'gw_orch_kib_per_stream', False, at_most(40)),
      ('Synthetic memory per idle run (KiB)', '<= 16', 'streams',
       'synthetic_kib_per_run', False, at_most(16)),
      (f'burst of {args.burst} within {args.burst_window_ms} ms: connected '
       '+ first update within 5 s', 'all, >= 10,000', 'burst',
       'first_update_within_5s', True,
       lambda v, ctx: v >= args.burst and args.burst >= 10000),
      ('burst: refused below --max-streams', '0', 'burst', 'refused', False,
       at_most(0)),
      ('burst: client connect spread (ms)', '<= 1,000', 'burst',
       'connect_spread_ms', False, at_most(1000)),
      ('burst: first update p99 (ms)', '<= 5,000', 'burst',
       'first_update_p99_ms', False, at_most(5000)),
      ('after the burst: threads and RSS within 10% of idle (s)', '<= 60',
       'burst', 'settle_s', False,
       lambda v, ctx: v <= 60 and ctx['all_settled']),
      ('  gateway threads idle', '', 'burst', 'gw_threads_idle', False, None),
      ('  gateway threads peak', '', 'burst', 'gw_threads_peak', False, None),
      ('  gateway threads at the end (% over idle)', '<= 10', 'burst',
       'gw_threads_after_pct', False, at_most(10)),
      ('  gateway RSS at the end (% over idle)', '<= 10', 'burst',
       'gw_rss_after_pct', False, at_most(10)),
      ('  orchestrator threads at the end (% over idle)', '<= 10', 'burst',
       'orch_threads_after_pct', False, at_most(10)),
      ('  orchestrator RSS at the end (% over idle)', '<= 10', 'burst',
       'orch_rss_after_pct', False, at_most(10)),
      (f'past --max-streams ({args.overload_open}): 503 + Retry-After, '
       'p99 (ms), first burst after start', '<= 20', 'overload',
       'answer_p99_ms', False, at_most(20)),
      ('  503s with Retry-After, of the requests past it', 'all', 'overload',
       'with_retry_after', True, lambda v, ctx: v >= args.overload_extra),
      ('  the same, a second burst 1 s later: p99 (ms)', '<= 20', 'overload',
       'second_answer_p99_ms', False, at_most(20)),
      ('  503s with Retry-After, of the requests past it', 'all', 'overload',
       'second_with_retry_after', True,
       lambda v, ctx: v >= args.overload_extra),
      ('new run on an idle system: request -> first update p50 (ms)', '<= 2',
       'first-update', 'first_update_p50_ms', False, at_most(2)),
  ]


def table(figs, args):
  """The markdown table of every figure."""
  out = ['| figure | target | agentstream median (runs) | peer asap | '
         'peer as written | x better than the peer | met |',
         '|---|---|---|---|---|---|---|']
  for label, target, scenario, key, higher, met in rows(args):
    meds, runs = {}, {}
    for s in SYSTEMS:
      reps = figs.get((scenario, s))
      if reps is None:
        continue
      runs[s] = [f.get(key) if f else None for f in reps]
      meds[s] = median(runs[s])
    ours = meds.get('agentstream')
    peers = [meds[s] for s in SYSTEMS[1:] if meds.get(s) is not None]
    best_peer = (max(peers) if higher else min(peers)) if peers else None
    ratio = ''
    if ours is not None and best_peer is not None and ours and best_peer:
      ratio = f'{ours / best_peer if higher else best_peer / ours:.2f}x'
    settled = [f.get('settled') if f else None
               for f in figs.get(('burst', 'agentstream'), [])]
    ctx = {'best_peer': best_peer,
           'all_settled': bool(settled) and all(x == 1 for x in settled)}
    verdict = ''
    if met is not None:
      verdict = 'not measured' if ours is None else (
          'met' if met(ours, ctx) else 'MISSED')
    each = ', '.join(fmt(v) for v in runs.get('agentstream', []))
    cells = [label, target, f'{fmt(ours)} ({each})']
    for s in SYSTEMS[1:]:
      cells.append(fmt(meds[s]) if s in meds else '-')
    cells += [ratio, verdict]
    out.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(out)


# Issue 15: the run store (docs/BENCHMARKS.md, "Issue 15: the run store").
STORE_SYSTEMS = ['agentstream', 'agentstream redis', 'agentstream redis x2']


def store_rows(args):
  """(figure, scenario, key): the same scenarios with each run store."""
  tput = f'{args.runs} runs x {args.count} x {args.size} B'
  lat = f'{args.latency_runs} runs x {args.latency_rate:g}/s'
  return [
      (f'events/s, {tput}, as fast as possible', 'throughput',
       'events_per_s'),
      (f'latency p50, {lat} (ms)', 'latency', 'latency_p50_ms'),
      (f'latency p99, {lat} (ms)', 'latency', 'latency_p99_ms'),
      (f'latency p50, {tput}, saturated (ms)', 'throughput',
       'latency_p50_ms'),
      ('new run on an idle system: request -> first update p50 (ms)',
       'first-update', 'first_update_p50_ms'),
      ('new run: request -> first update p99 (ms)', 'first-update',
       'first_update_p99_ms'),
      ('new run: request -> first partial result p50 (ms)', 'first-update',
       'first_partial_p50_ms'),
  ]


def _reps(figs, key, field):
  reps = figs.get(key)
  if reps is None:
    return None, []
  each = [f.get(field) if f else None for f in reps]
  return median(each), each


def _cell(med, each):
  return f'{fmt(med)} ({", ".join(fmt(v) for v in each)})'


def store_table(figs, args, configs):
  """Three markdown tables: the scenarios with each store (medians, each
  repetition in brackets, the ratio to the memory store's median); memory
  per run in Redis; updates/s one Redis takes."""
  out = ['| figure | memory store | redis store | redis / memory | '
         'redis, 2 replicas | 2 replicas / memory |',
         '|---|---|---|---|---|---|']
  for label, scenario, key in store_rows(args):
    cells = [label]
    base = None
    for i, s in enumerate(STORE_SYSTEMS):
      med, each = _reps(figs, (scenario, s), key)
      cells.append(_cell(med, each))
      if i == 0:
        base = med
        continue
      # Plainly this column over memory's: events/s below 1 and latencies
      # above 1 are what the store costs.
      cells.append(f'{med / base:.2f}x' if med and base else '')
    out.append('| ' + ' | '.join(cells) + ' |')
  out += ['', f'Memory in Redis (INFO used_memory; {args.store_runs} runs x '
          f'{args.store_count} Synthetic updates x {args.store_size} B, then '
          f'{args.store_live} live runs):', '',
          '| figure | median (each repetition) |', '|---|---|']
  mem = ('redis-memory', 'agentstream redis')
  for label, key in [
      ('bytes per ended run, log kept (--log-ttl)', 'bytes_per_ended_run'),
      ('  one run: entries in its log (XLEN)', 'one_run_log_entries'),
      ('  one run: MEMORY USAGE of its log', 'one_run_log_bytes'),
      ('  one run: MEMORY USAGE of its meta', 'one_run_meta_bytes'),
      ('  one run: MEMORY USAGE of its end (tombstone)', 'one_run_end_bytes'),
      ('bytes per tombstone (log and meta expired; --tombstone-ttl)',
       'bytes_per_tombstone'),
      ('bytes per live run (record, lease, first updates)',
       'bytes_per_live_run')]:
    out.append(f'| {label} | {_cell(*_reps(figs, mem, key))} |')
  out += ['', 'Updates/s one Redis takes from the run store (store_bench: '
          f'RedisRunStore driven directly, {args.store_size} B updates, '
          'AOF everysec; CPU in % of one core over the measured seconds):', '',
          '| configuration | updates/s | commit p50 (ms) | commit p99 (ms) | '
          'redis-server CPU % | store_bench CPU % |',
          '|---|---|---|---|---|---|']
  runs = args.store_bench_runs
  names = {
      'pipelined 1': f'{runs} runs, window 64, 1 replica (pipelined)',
      'pipelined 2': f'{runs} runs, window 64, 2 replicas (pipelined)',
      'window 1': f'{runs} runs, window 1 (a round trip carries one update '
                  'per run)',
      'one round trip': '1 run, window 1 (one round trip per update)',
  }
  for label, _ in configs:
    cells = [names.get(label, label)]
    for key in ('updates_per_s', 'commit_p50_ms', 'commit_p99_ms',
                'redis_cpu_pct', 'bench_cpu_pct'):
      cells.append(_cell(*_reps(figs, ('store', label), key)))
    out.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(out)


def unmeasured(figs):
  """(scenario, system) pairs none of whose repetitions gave figures."""
  return [k for k, reps in figs.items() if not any(reps)]


def plot(sweep_rows, out_dir, png):
  """Writes <out_dir>/sweep.dat and plots it to `png`; an error text or
  None."""
  data = os.path.join(out_dir, 'sweep.dat')
  systems = [s for s in SYSTEMS if any(r[0] == s for r in sweep_rows)]
  if not systems:
    return 'plot: no sweep point to plot'
  with open(data, 'w') as f:
    f.write('# system offered/s achieved/s p50_ms p99_ms\n')
    for i, s in enumerate(systems):
      if i:
        f.write('\n\n')
      for r in sweep_rows:
        if r[0] == s:
          f.write(f'"{s}" {r[1]:.6g} {r[2]:.6g} {r[3]:.6g} {r[4]:.6g}\n')
  curves = []
  for i, s in enumerate(systems):
    curves.append(f"'{data}' index {i} using 2:4 with linespoints lc {i + 1} "
                  f"dt 1 title '{s} p50'")
    curves.append(f"'{data}' index {i} using 2:5 with linespoints lc {i + 1} "
                  f"dt 2 title '{s} p99'")
  script = '\n'.join([
      "set terminal pngcairo noenhanced size 1000,640 font 'sans,10'",
      f"set output '{png}'",
      "set title 'Latency emitted_at -> client against offered load'",
      "set xlabel 'offered partial results per second (all runs)'",
      "set ylabel 'latency (ms)'",
      'set logscale xy', 'set grid', 'set key top left',
      'plot ' + ', '.join(curves), ''])
  os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
  proc = subprocess.run(['gnuplot'], input=script, text=True,
                        capture_output=True, timeout=60)
  if proc.returncode != 0 or not os.path.exists(png):
    return f'plot: gnuplot failed: {proc.stderr[-1000:]}'
  return None
