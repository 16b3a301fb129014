#!/usr/bin/python3
"""Runs every benchmark scenario and prints one table (docs/BENCHMARKS.md).

Each scenario of issue 11's table runs --reps times through stream_bench
(which starts its own gateway, orchestrator and Synthetic each time); the
throughput and latency scenarios also run against the seed's FastAPI stack
(peers/fastapi_peer.py, both variants: as fast as possible and "as written",
with its sleep between events), with the same client, interleaved with
agentstream's repetitions. Then a sweep of offered load, 10 runs at rising
rates until saturation, for every system: the data and a PNG plot of latency
p50/p99 against offered load (gnuplot).

The table: figure | target | agentstream median (each repetition) | peer
medians | how many times better | met or missed.

Then issue 15's run store (docs/SCALING.md), side by side in the same
invocation: the same throughput, latency and first-update scenarios with the
in-memory store, with the Redis store (one orchestrator), and with two
orchestrator replicas sharing the Redis, each with the ratio to memory;
memory per run in Redis (stream_bench --mode=redis-memory); and updates/s
one Redis takes from the store (store_bench: RedisRunStore driven directly),
pipelined and one round trip per update. `--only=store` runs that section
alone.

Exit status: 0 when every repetition of every scenario ran and measured each
of its figures; 1 otherwise (never because a figure missed its target);
77 when the peer's Python packages, gnuplot or redis-server are missing (1
under CI: tests/e2e/ci_policy.py).
"""

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'e2e'))
import ci_policy  # noqa: E402
import bench_report  # noqa: E402

PEER_PYTHON = '/usr/bin/python3'  # Debian's python3-fastapi and -uvicorn.
PEER_VARIANTS = {'peer asap': 'pace=asap', 'peer as written': 'pace=written'}
REDIS_SERVER = '/usr/bin/redis-server'  # Debian's (tests/testing/redis_server.h)


def parse_args():
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  build = os.path.join(HERE, '..', '..', 'build')
  p.add_argument('--bin-dir', default=os.environ.get(
      'AGENTSTREAM_BIN_DIR', os.path.join(build, 'bin')),
                 help='the built binaries (default: AGENTSTREAM_BIN_DIR, '
                 'else build/bin of the source tree)')
  p.add_argument('--out-dir', default='',
                 help='per-repetition JSON, sweep data, table.md (default: '
                 '<bin-dir>/../bench)')
  p.add_argument('--plot', default='',
                 help='PNG of latency against offered load (default: '
                 '<out-dir>/latency_vs_load.png)')
  p.add_argument('--reps', type=int, default=3,
                 help='repetitions of each scenario [3]')
  p.add_argument('--smoke', action='store_true',
                 help='tiny sizes (seconds, for ctest bench_smoke); flags '
                 'given explicitly still win')
  p.add_argument('--runs', type=int, help='throughput: concurrent runs [50]')
  p.add_argument('--count', type=int, help='throughput: updates a run [1000]')
  p.add_argument('--size', type=int, default=100,
                 help='bytes a Synthetic update [100]')
  p.add_argument('--latency-runs', type=int, help='latency: runs [10]')
  p.add_argument('--latency-rate', type=float, default=100,
                 help='latency: updates/s a run [100]')
  p.add_argument('--latency-seconds', type=float,
                 help='latency: seconds a run lasts [3]')
  p.add_argument('--streams', type=int, help='open streams [10000]')
  p.add_argument('--streams-window-ms', type=int,
                 help='streams: they connect evenly over this window [5000]')
  p.add_argument('--hold-s', type=float,
                 help='streams: seconds held once all are open [3]')
  p.add_argument('--burst', type=int, help='clients in the burst [10000]')
  p.add_argument('--burst-window-ms', type=int,
                 help='burst: clients connect over this window [1000]')
  p.add_argument('--settle-s', type=float,
                 help='burst: watch threads and RSS after [60]')
  p.add_argument('--overload-open', type=int,
                 help='overload: --max-streams, all open [1000]')
  p.add_argument('--overload-extra', type=int,
                 help='overload: requests past it [1000]')
  p.add_argument('--first-update-runs', type=int,
                 help='new runs one at a time on an idle system [50]')
  p.add_argument('--sweep-runs', type=int, default=10,
                 help='sweep: concurrent runs at each point [10]')
  p.add_argument('--sweep-points', type=int,
                 help='sweep: most points a system [10]')
  p.add_argument('--sweep-min-rate', type=float, default=10,
                 help='sweep: updates/s a run at the first point [10]')
  p.add_argument('--sweep-seconds', type=float,
                 help='seconds a sweep point lasts [2]')
  p.add_argument('--only', choices=['all', 'store'], default='all',
                 help='store: only issue 15\'s run store section [all]')
  p.add_argument('--store-runs', type=int,
                 help='redis-memory: ended runs, all at once [1000]')
  p.add_argument('--store-count', type=int, default=80,
                 help='redis-memory: Synthetic updates a run [80]')
  p.add_argument('--store-size', type=int, default=300,
                 help='redis-memory and store_bench: bytes an update [300]')
  p.add_argument('--store-live', type=int,
                 help='redis-memory: live runs held [1000]')
  p.add_argument('--store-bench-runs', type=int,
                 help='store_bench: live runs appending [100]')
  p.add_argument('--store-bench-seconds', type=float,
                 help='store_bench: seconds measured a configuration [3]')
  p.add_argument('--timeout-s', type=int, default=600,
                 help='deadline of each stream_bench invocation [600]')
  args = p.parse_args()
  full = dict(runs=50, count=1000, latency_runs=10, latency_seconds=3,
              streams=10000, streams_window_ms=5000, hold_s=3, burst=10000,
              burst_window_ms=1000,
              settle_s=60, overload_open=1000,
              overload_extra=1000, first_update_runs=50, sweep_points=10,
              sweep_seconds=2, store_runs=1000, store_live=1000,
              store_bench_runs=100, store_bench_seconds=3)
  smoke = dict(runs=3, count=50, latency_runs=3, latency_seconds=0.2,
               streams=50, streams_window_ms=0, hold_s=1.2, burst=50,
               burst_window_ms=200,
               settle_s=1, overload_open=20,
               overload_extra=20, first_update_runs=10, sweep_points=3,
               sweep_seconds=0.2, store_runs=20, store_live=20,
               store_bench_runs=4, store_bench_seconds=0.3)
  for k, v in (smoke if args.smoke else full).items():
    if getattr(args, k) is None:
      setattr(args, k, v)
  args.out_dir = args.out_dir or os.path.join(args.bin_dir, '..', 'bench')
  args.plot = args.plot or os.path.join(args.out_dir, 'latency_vs_load.png')
  return args


def _die_with_parent():
  """In the child before exec: SIGTERM when this script dies, however it
  dies (PR_SET_PDEATHSIG), so that no server outlives it."""
  ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Server:
  """A server started here for the throughput and latency scenarios (the
  FastAPI peer, or agentstream through `stream_bench --mode=serve`), kept
  for all their repetitions and stopped by its PID."""

  def __init__(self, name, cmd, out_dir):
    self.name = name
    self.dir = tempfile.mkdtemp(prefix='agentstream-bench-')
    ready = os.path.join(self.dir, 'ready')
    self.log = open(os.path.join(out_dir, f'{name}.log'), 'w')
    self.proc = subprocess.Popen(
        [c.replace('{ready}', ready) for c in cmd], stdout=self.log,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent)
    deadline = time.monotonic() + 120
    while not os.path.exists(ready):
      if self.proc.poll() is not None or time.monotonic() > deadline:
        self.stop()
        raise RuntimeError(f'{name} did not start; see {name}.log')
      time.sleep(0.05)
    with open(ready) as f:
      text = f.read()
    # The peer writes its port, stream_bench --mode=serve a JSON object.
    self.port = int(text) if text.strip().isdigit() else json.loads(
        text)['port']

  def stop(self):
    if self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait(timeout=10)
    self.log.close()
    shutil.rmtree(self.dir, ignore_errors=True)


class Bench:
  """Runs stream_bench and keeps every figure and every failure."""

  def __init__(self, args):
    self.args = args
    self.binary = os.path.join(args.bin_dir, 'stream_bench')
    self.failures = []
    self.serial = 0

  def run(self, label, mode, flags, port=0, extra_query='', saturating=False,
          binary=None):
    """One stream_bench invocation: the figures of `mode`, or None.

    `saturating`: the load is meant to reach past what the system keeps up
    with, where the orchestrator cutting a follower off as `slow_consumer`
    (--follower-max-lag) is the designed answer, not a failure; such a run
    returns None without being counted as failed. Any other failure
    counts."""
    self.serial += 1
    out = os.path.join(self.args.out_dir, f'{self.serial:03d}.json')
    if binary:  # store_bench: no modes, its figures under "store".
      cmd = [binary, f'--json-out={out}'] + flags
    else:
      cmd = [self.binary, f'--mode={mode}', f'--json-out={out}'] + flags
    if port:
      cmd += [f'--gateway-port={port}']
    if extra_query:
      cmd += [f'--extra-query={extra_query}']
    env = dict(os.environ, AGENTSTREAM_BIN_DIR=self.args.bin_dir)
    t0 = time.monotonic()
    try:
      if os.path.exists(out):
        os.unlink(out)
      proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                            timeout=self.args.timeout_s)
      code, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
      code, text = 'timeout', str(e.stdout or '')
    print(f'[{label}] {" ".join(cmd[1:])} ({time.monotonic() - t0:.1f} s)',
          flush=True)
    result = None
    if os.path.exists(out):
      with open(out) as f:
        result = json.load(f).get(mode)
    if code != 0 or result is None:
      if result is None:
        why = text[-2000:]
      else:
        why = '; '.join(result['failures'] + [
            f'{k} not measured' for k, v in result['figures'].items()
            if v is None])
        if saturating and only_slow_consumers(result['failures']):
          print(f'[{label}] past saturation ({why})', flush=True)
          return None
      self.failures.append(f'{label} {mode}: exit {code}: {why}')
      print(f'[{label}] FAILED (exit {code}): {why}', flush=True)
    return result['figures'] if result else None


def only_slow_consumers(failures):
  """True when every failed run of a throughput run (its summary: "N of M
  runs complete (...): K x <why>; L x <why>") was cut off as
  slow_consumer and none was refused."""
  if not failures:
    return False
  for failure in failures:
    head, _, kinds = failure.partition('): ')
    if ', 0 refused' not in head or not kinds:
      return False
    # Kinds are "N x <why>" joined by "; " (a why may hold "; " itself).
    if not all('slow_consumer' in k
               for k in re.split(r'; (?=\d+ x )', kinds)):
      return False
  return True


def throughput_flags(runs, count, size, rate):
  return [f'--runs={runs}', f'--count={count}', f'--size={size}',
          f'--rate={rate:g}']


def sweep(bench, label, port, query, sat_total, args, rows):
  """Latency against offered load: args.sweep_runs runs, rate a run rising
  geometrically from --sweep-min-rate to 1.25x the saturated rate, until
  the system no longer keeps up (achieved < 80% of offered)."""
  runs, points = args.sweep_runs, args.sweep_points
  top = max(args.sweep_min_rate * 2, 1.25 * sat_total / runs)
  for k in range(points):
    rate = args.sweep_min_rate * (top / args.sweep_min_rate) ** (
        k / max(1, points - 1))
    count = max(5, int(rate * args.sweep_seconds))
    f = bench.run(label, 'throughput',
                  throughput_flags(runs, count, args.size, rate), port, query,
                  saturating=True)
    if not f or f.get('partials_per_s') is None:
      break
    offered = rate * runs
    rows.append((label, offered, f['partials_per_s'], f['latency_p50_ms'],
                 f['latency_p99_ms']))
    if f['partials_per_s'] < 0.8 * offered:
      break


# Issue 15: agentstream with each run store, as stream_bench starts it.
STORE_SYSTEMS = {
    'agentstream': [],
    'agentstream redis': ['--run-store=redis'],
    'agentstream redis x2': ['--run-store=redis', '--orchestrators=2'],
}


def store_bench_configs(args):
  """(label, store_bench flags): updates/s one Redis takes (see
  bench_report.STORE_BENCH_ROWS)."""
  runs, size = args.store_bench_runs, args.store_size
  common = [f'--size={size}', f'--seconds={args.store_bench_seconds:g}']
  return [
      ('pipelined 1', [f'--runs={runs}', '--window=64', '--replicas=1']),
      ('pipelined 2', [f'--runs={runs}', '--window=64', '--replicas=2']),
      ('window 1', [f'--runs={runs}', '--window=1', '--replicas=1']),
      ('one round trip', ['--runs=1', '--window=1', '--replicas=1']),
  ], common


def main():
  args = parse_args()
  full = args.only == 'all'
  missing = []
  if full and subprocess.run([PEER_PYTHON, '-c', 'import fastapi, uvicorn'],
                             capture_output=True).returncode != 0:
    missing.append('python3-fastapi/python3-uvicorn')
  if full and not shutil.which('gnuplot'):
    missing.append('gnuplot (gnuplot-nox)')
  if not os.access(REDIS_SERVER, os.X_OK):
    missing.append('redis-server')
  for binary in ('stream_bench', 'store_bench'):
    if not os.access(os.path.join(args.bin_dir, binary), os.X_OK):
      print(f'[bench] no {binary} in {args.bin_dir}: build it first')
      return 1
  if missing:
    return ci_policy.skip_or_fail('bench', 'not installed: ' +
                                  ', '.join(missing))
  os.makedirs(args.out_dir, exist_ok=True)
  bench = Bench(args)
  store_bench = os.path.join(args.bin_dir, 'store_bench')
  systems = ['agentstream'] + (list(PEER_VARIANTS) if full else [])
  redis_systems = [s for s in STORE_SYSTEMS if s != 'agentstream']
  figs = {}  # (scenario, system) -> [figures of each repetition]

  def keep(key, f):
    figs.setdefault(key, []).append(f)

  os.environ['AGENTSTREAM_BIN_DIR'] = args.bin_dir
  sweep_rows = []
  servers = []
  peer_line = 'fastapi_peer: not started'
  try:
    ports, queries = {}, {}
    if full:
      servers.append(Server('peer', [
          PEER_PYTHON, os.path.join(HERE, 'peers', 'fastapi_peer.py'),
          '--port=0', '--port-file={ready}'], args.out_dir))
      with open(os.path.join(args.out_dir, 'peer.log')) as f:
        peer_line = f.readline().strip()
      print(peer_line, flush=True)
      for v, q in PEER_VARIANTS.items():
        ports[v], queries[v] = servers[0].port, q
    for s, flags in STORE_SYSTEMS.items():
      servers.append(Server(s.replace(' ', '_'), [
          bench.binary, '--mode=serve', '--serve-file={ready}'] + flags,
          args.out_dir))
      ports[s], queries[s] = servers[-1].port, ''
    tput = throughput_flags(args.runs, args.count, args.size, 0)
    lat_count = max(5, int(args.latency_rate * args.latency_seconds))
    lat = throughput_flags(args.latency_runs, lat_count, args.size,
                           args.latency_rate)
    for rep in range(args.reps):
      for s in systems + redis_systems:
        keep(('throughput', s), bench.run(s, 'throughput', tput, ports[s],
                                          queries[s]))
        if s == 'agentstream' and full:
          keep(('throughput_batched', s),
               bench.run('agentstream batched', 'throughput', tput, ports[s],
                         bench_report.BATCH_QUERY))
        keep(('latency', s), bench.run(s, 'throughput', lat, ports[s],
                                       queries[s]))
    saturated = {}
    for s in systems if full else []:
      sat = bench_report.median([f and f.get('partials_per_s')
                                 for f in figs[('throughput', s)]])
      saturated[s] = sat
      if sat is None:
        continue
      rate = sat / 2 / args.runs
      half = throughput_flags(args.runs, max(5, int(rate * args.latency_seconds)),
                              args.size, rate)
      for rep in range(args.reps):
        keep(('half', s), bench.run(s, 'throughput', half, ports[s],
                                    queries[s]))
    for s in systems if full else []:
      if saturated[s] is not None:
        sweep(bench, s, ports[s], queries[s], saturated[s], args, sweep_rows)
  except RuntimeError as e:
    bench.failures.append(str(e))
  finally:
    for server in servers:
      server.stop()

  configs, common = store_bench_configs(args)
  for rep in range(args.reps):
    if full:
      keep(('streams', 'agentstream'), bench.run(
          'agentstream', 'streams',
          [f'--streams={args.streams}',
           f'--streams-window-ms={args.streams_window_ms}',
           f'--hold-s={args.hold_s:g}']))
      keep(('burst', 'agentstream'), bench.run(
          'agentstream', 'burst',
          [f'--burst={args.burst}', f'--burst-window-ms={args.burst_window_ms}',
           f'--settle-s={args.settle_s:g}',
           f'--samples-out={args.out_dir}/burst-{rep + 1}.csv']))
      keep(('overload', 'agentstream'), bench.run(
          'agentstream', 'overload',
          [f'--overload-open={args.overload_open}',
           f'--overload-extra={args.overload_extra}']))
    for s, flags in STORE_SYSTEMS.items():
      keep(('first-update', s), bench.run(
          s, 'first-update',
          [f'--first-update-runs={args.first_update_runs}'] + flags))
    keep(('redis-memory', 'agentstream redis'), bench.run(
        'agentstream redis', 'redis-memory',
        ['--run-store=redis', f'--memory-runs={args.store_runs}',
         f'--count={args.store_count}', f'--size={args.store_size}',
         f'--memory-live={args.store_live}']))
    for label, flags in configs:
      keep(('store', label), bench.run(
          f'store_bench {label}', 'store', flags + common,
          binary=store_bench))

  commit = subprocess.run(['git', '-C', HERE, 'rev-parse', '--short', 'HEAD'],
                          capture_output=True, text=True).stdout.strip()
  head = (f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, commit '
          f'{commit or "unknown"}, {os.cpu_count()} cores, {args.reps} '
          f'repetitions')
  parts = []
  if full:
    parts += [f'{head}; {peer_line}', '', bench_report.table(figs, args), '']
  parts += [f'Issue 15, the run store: {head}', '',
            bench_report.store_table(figs, args, configs)]
  table = '\n'.join(parts)
  print(table)
  with open(os.path.join(args.out_dir, 'table.md'), 'w') as f:
    f.write(table + '\n')
  if full:
    plot_error = bench_report.plot(sweep_rows, args.out_dir, args.plot)
    if plot_error:
      bench.failures.append(plot_error)
    else:
      print(f'plot: {args.plot} (data: {args.out_dir}/sweep.dat)')
    if not sweep_rows:
      bench.failures.append('sweep: no point measured')
  empty = bench_report.unmeasured(figs)
  bench.failures += [f'{s} {k}: no figures' for k, s in empty]
  for f in bench.failures:
    print(f'FAILED: {f}')
  return 1 if bench.failures else 0


if __name__ == '__main__':
  sys.exit(main())
