#!/usr/bin/env python3
"""End-to-end test of docker-compose.yml: the whole system in containers.

What it does, in order (every step bounded; the whole run by --budget-s):
  1. starts its own dockerd (own --data-root, --exec-root, --pidfile and unix
     socket; logs to a file; no default bridge, so it never touches docker0)
     and points DOCKER_HOST at it;
  2. imports a `debootstrap --variant=minbase bookworm` root as
     debian:bookworm-slim when that image is missing (the tarball is cached
     under the build tree);
  3. builds agentstream:latest (deploy/docker/Dockerfile) and
     agentstream-edge:latest (deploy/nginx/Dockerfile);
  4. starts the compose project under a unique name, the gateway published on
     127.0.0.1:<free port>, and reads the operator's token from the gateway
     container (authentication is on: every request below carries it); two
     orchestrators and `redis` are healthy, redis with appendonly yes;
  5. one question through the gateway: a complete stream (over gRPC with
     mTLS between the services, as the compose file configures); then, from
     a container on the project's network, `openssl s_client` is refused by
     the orchestrator and by a specialist without a client certificate and
     let in with one from the project's CA (the `certs` service's);
     authentication (compose_auth.py): no token or an unknown one gets 401,
     /healthz stays open, users added with `token add` are let in, a run of
     one is 404 to another (attach, cancel) and open to the operator;
  6. --scale risk-analyst=3, 30 questions needing RiskAnalyst: all three
     replicas used, none with more than half of the calls (instances from
     the updates' `instance` field, cross-checked with the orchestrator's
     specialist_calls_total{instance});
  7. scale to 4 while questions run: the new replica gets calls within 10 s;
  8. kills (docker rm -f) one RiskAnalyst replica while runs are in flight:
     every run still ends with `complete` and `done`; runs started after it
     use only the survivors;
  9. two orchestrators share runs through `redis` (the compose default):
     8 Synthetic runs of about 6 s each, then `docker kill` of the
     orchestrator that owns most of them (the owners read from Redis); each
     client follows its run to `done` across cuts and 503s, resuming with
     Last-Event-ID: every run arrives whole (seq 1..N once, `complete`,
     `done`), and exactly the killed replica's runs carry the survivor's
     "took this run over" status (its runs_taken_over_total agrees);
 10. the edge (profile edge) over HTTPS and HTTP/2: 401 without a token,
     the token passes as cookie or header; the first update arrives
     before the run has finished (no buffering);
 11. takes everything down and checks that no container, network or volume
     of the project is left; stops dockerd by PID (always, also on failure).

Exit status: 0 passed, 1 failed, 77 skipped (no Docker capability here and
CI unset; under CI a missing capability is a failure:
tests/e2e/ci_policy.py).
"""

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import http.client

from compose_auth import AuthSteps
from compose_engine import (
    ComposeEngine,
    QUESTION,
    SEED_TYPES,
    TestFailure,
    Skip,
    log,
    docker_time,
    free_port,
    Docker,
    parse_sse_lines,
    Stream,
    ask,
    bearer,
    follow_to_end,
    query,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))  # tests/e2e: ci_policy
from ci_policy import skip_or_fail  # pylint: disable=wrong-import-position


class ComposeE2E(AuthSteps, ComposeEngine):
  """The steps of the test, in order (see the module's docstring)."""

  # -- steps -----------------------------------------------------------------

  def step_first_question(self):
    s = ask(self.http_port, query(QUESTION), timeout=60, token=self.token)
    if s.status != 200:
      raise TestFailure(f"first question: {s.summary()}")
    if not s.events or s.events[0]["event"] != "connected":
      raise TestFailure("first event is not `connected`: " + s.summary())
    missing = [t for t in SEED_TYPES if t not in s.types()]
    if missing:
      raise TestFailure(f"first question: no update of type {missing}")
    if not s.complete_and_done():
      raise TestFailure("first question did not end with complete, done: " +
                        s.summary())
    seqs = [e["json"]["seq"] for e in s.messages()]
    if seqs != list(range(1, len(seqs) + 1)):
      raise TestFailure("seq not dense from 1")
    final = s.messages()[-1]["json"]
    if final.get("outcome") != "ok":
      raise TestFailure(f"first question outcome {final.get('outcome')}")
    self.figures["first_question_updates"] = len(seqs)
    log(f"first question: {len(seqs)} updates, every seed type, complete, "
        "done")

  def step_mtls(self):
    """The orchestrator and a specialist refuse a TLS client without a
    certificate, and accept one with a certificate from the project's CA.
    TLS 1.2, so that the refusal is part of the handshake (with TLS 1.3 the
    client finishes first and reads the refusal later). s_client's report
    (stderr with -brief) is kept, the bytes it reads are not."""
    ids = self.docker.containers("orchestrator")
    if not ids:
      raise TestFailure("mTLS: no orchestrator is running")
    info = self.docker.inspect(ids[0])
    networks = list(info["NetworkSettings"]["Networks"])
    volumes = [m.get("Name") for m in info["Mounts"]
               if m.get("Destination") == "/tls"]
    if not networks or not volumes or not volumes[0]:
      raise TestFailure(f"mTLS: orchestrator networks {networks}, /tls "
                        f"volume {volumes}")
    for target in ("orchestrator:50051", "data-analyst:50061"):
      host = target.split(":")[0]
      base = ["docker", "run", "--rm", "--network", networks[0], "-v",
              f"{volumes[0]}:/tls:ro", "--entrypoint", "/bin/sh",
              "agentstream:latest", "-c",
              'openssl s_client "$@" </dev/null 2>&1 >/dev/null', "sh",
              "-brief", "-connect", target, "-servername", host,
              "-CAfile", "/tls/ca.crt", "-verify_return_error", "-tls1_2",
              "-alpn", "h2"]
      refused = self.docker.run(base, timeout=60, check=False, quiet=True)
      if refused.returncode == 0 or "CONNECTION ESTABLISHED" in \
          refused.stdout:
        raise TestFailure(f"mTLS: {target} accepted a client without a "
                          f"certificate:\n{refused.stdout[-1500:]}")
      served = self.docker.run(
          base + ["-cert", "/tls/gateway/tls.crt", "-key",
                  "/tls/gateway/tls.key"], timeout=60, check=False, quiet=True)
      if served.returncode != 0 or "Verification: OK" not in served.stdout:
        raise TestFailure(f"mTLS: {target} refused the gateway's "
                          f"certificate (exit {served.returncode}):\n"
                          f"{served.stdout[-1500:]}{served.stderr[-800:]}")
      why = (refused.stdout.strip().splitlines() or ["?"])[-1]
      log(f"mTLS: {target} refused a client without a certificate "
          f"(exit {refused.returncode}: {why[-120:]}), served one with the "
          "gateway's")

  def risk_question(self, i):
    return query(f"Assess the risk exposure and volatility of account "
                 f"ACC-{1000 + (i % 90)} over the last 6 months",
                 specialists="RiskAnalyst")

  def run_parallel(self, n, workers, make_query):
    results = [None] * n
    lock = threading.Lock()
    nxt = [0]

    def worker():
      while True:
        with lock:
          i = nxt[0]
          nxt[0] += 1
        if i >= n:
          return
        results[i] = ask(self.http_port, make_query(i), timeout=90,
                         token=self.token)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
      t.start()
    for t in threads:
      t.join(timeout=self.budget.bound(300))
    return results

  def step_scale_3(self):
    t0 = time.monotonic()
    self.up("--no-recreate", "--scale", "risk-analyst=3")
    ids = self.wait_healthy("risk-analyst", 3)
    names = self.hostnames(ids)
    log(f"risk-analyst x3 healthy in {time.monotonic() - t0:.1f}s: "
        f"{sorted(names)}")
    # Discovery: the orchestrator learns the new replicas by re-resolving
    # DNS when connections age out. Ask until all three answered (bounded).
    t1 = time.monotonic()
    seen = set()
    warm = 0
    while time.monotonic() - t1 < 30 and len(seen) < 3:
      r = self.run_parallel(3, 3, lambda i: self.risk_question(100 + warm))
      warm += 3
      for s in r:
        seen |= {i.split(":")[0] for i in s.instances("RiskAnalyst")}
      time.sleep(0.2)
    self.figures["scale3_all_seen_after_s"] = round(time.monotonic() - t1, 1)
    log(f"all three replicas answered after "
        f"{self.figures['scale3_all_seen_after_s']}s ({warm} warm-up runs): "
        f"{sorted(seen)}")
    before = self.orchestrator_calls()
    results = self.run_parallel(30, 3, self.risk_question)
    after = self.orchestrator_calls()
    counts = {}
    for i, s in enumerate(results):
      if not s.complete_and_done():
        raise TestFailure(f"scale 3: question {i} did not complete: "
                          f"{s.summary()}")
      inst = s.instances("RiskAnalyst")
      if len(inst) != 1:
        raise TestFailure(f"scale 3: question {i}: RiskAnalyst instances "
                          f"{inst} (want exactly one)")
      host = next(iter(inst)).split(":")[0]
      counts[host] = counts.get(host, 0) + 1
    self.figures["scale3_calls_by_instance"] = counts
    metric_delta = {k.split(":")[0]: after.get(k, 0) - before.get(k, 0)
                    for k in after if after.get(k, 0) - before.get(k, 0)}
    self.figures["scale3_orchestrator_metric_delta"] = metric_delta
    log(f"30 questions, RiskAnalyst calls by instance: {counts}; "
        f"orchestrator specialist_calls_total delta: {metric_delta}")
    if set(counts) != set(names):
      raise TestFailure(f"scale 3: instances used {sorted(counts)} != "
                        f"replicas {sorted(names)}")
    if max(counts.values()) > 15:
      raise TestFailure(f"scale 3: one instance has more than half: {counts}")
    if metric_delta != counts:
      raise TestFailure(f"orchestrator metrics {metric_delta} disagree with "
                        f"the updates' instances {counts}")
    return names

  def background_load(self, stop, workers=3, base=1000, runs_per_s=40):
    """Questions in a loop until `stop` is set, `runs_per_s` in all (one
    client: the gateway allows it 50 run starts a second, docs/GATEWAY.md
    "Limits"); returns (threads, results) where results collects
    (start_time, Stream)."""
    results = []
    lock = threading.Lock()
    counter = [base]
    period = workers / runs_per_s

    def worker():
      while not stop.is_set():
        with lock:
          i = counter[0]
          counter[0] += 1
        started = time.time()
        s = ask(self.http_port, self.risk_question(i), timeout=90,
                token=self.token)
        with lock:
          results.append((started, s))
        stop.wait(max(0.0, period - (time.time() - started)))

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(workers)]
    for t in threads:
      t.start()
    return threads, results, lock

  def step_scale_4(self, names3):
    stop = threading.Event()
    threads, results, lock = self.background_load(stop)
    try:
      time.sleep(2)
      t_up = time.time()
      self.up("--no-recreate", "--scale", "risk-analyst=4")
      t_returned = time.time()
      ids = self.docker.containers("risk-analyst")
      names = self.hostnames(ids)
      new = set(names) - set(names3)
      if len(new) != 1:
        raise TestFailure(f"scale 4: new replicas {new}")
      new_host = next(iter(new))
      t_started = docker_time(
          self.docker.inspect(names[new_host])["State"]["StartedAt"])
      first_call = None
      deadline = time.monotonic() + 20
      while time.monotonic() < deadline and first_call is None:
        time.sleep(0.25)
        with lock:
          for started, s in results:
            for e in s.messages():
              inst = e["json"].get("instance", "")
              if inst.split(":")[0] == new_host and \
                  e["json"].get("specialist") == "RiskAnalyst":
                first_call = e["t"] if first_call is None else \
                    min(first_call, e["t"])
        if first_call is None:
          # A stream still running holds its updates until it ends: look at
          # finished ones only, which is conservative.
          pass
    finally:
      stop.set()
      for t in threads:
        t.join(timeout=self.budget.bound(120))
    for started, s in results:
      if not s.complete_and_done():
        raise TestFailure("scale 4: a run did not complete: " + s.summary())
    if first_call is None:
      raise TestFailure(f"scale 4: the new replica {new_host} got no call "
                        "within 20 s")
    delay = first_call - t_started
    self.figures["scale4_new_replica_first_call_after_start_s"] = round(
        delay, 2)
    self.figures["scale4_compose_up_s"] = round(t_returned - t_up, 1)
    log(f"scale 4: new replica {new_host} got its first call "
        f"{delay:.1f}s after its container started (compose up took "
        f"{t_returned - t_up:.1f}s); {len(results)} runs meanwhile, all "
        "complete")
    if delay > 10:
      raise TestFailure(f"scale 4: first call to the new replica after "
                        f"{delay:.1f}s (> 10 s)")
    return names

  def orchestrator_counter(self, name, specialist="RiskAnalyst"):
    """Sum of agentstream_orchestrator_<name>{specialist=...} samples."""
    text = self.orchestrator_metrics()
    total = 0
    pat = re.compile(r'^agentstream_orchestrator_' + name +
                     r'\{specialist="' + specialist + r'"[^}]*\} (\d+)', re.M)
    for n in pat.findall(text):
      total += int(n)
    return total

  def step_kill(self, names4):
    retries0 = self.orchestrator_counter("specialist_retries_total")
    stop = threading.Event()
    threads, results, lock = self.background_load(stop, workers=4, base=5000)
    try:
      # Kill a replica that is serving a call right now, if one can be seen.
      time.sleep(2.5)
      victim = random.choice(sorted(names4))
      cid = names4[victim]
      t_kill = time.time()
      self.docker.run(["docker", "rm", "-f", cid], timeout=60)
      t_killed = time.time()
      log(f"killed risk-analyst replica {victim} "
          f"({t_killed - t_kill:.1f}s)")
      time.sleep(8)
    finally:
      stop.set()
      for t in threads:
        t.join(timeout=self.budget.bound(120))
    survivors = set(names4) - {victim}
    bad = [s for _, s in results if not s.complete_and_done()]
    if bad:
      raise TestFailure(f"kill: {len(bad)} of {len(results)} runs did not end "
                        f"with complete, done: {bad[0].summary()}")
    hit = 0
    errors = 0
    later = 0
    for started, s in results:
      hosts = {i.split(":")[0] for i in s.instances("RiskAnalyst")}
      if victim in hosts and started < t_killed:
        hit += 1
      for e in s.messages():
        if e["json"].get("type") != "error":
          continue
        errors += 1
        if errors == 1:
          with open(os.path.join(self.args.artifacts, "kill-error-run.json"),
                    "w") as f:
            json.dump([ev["json"] for ev in s.messages()], f, indent=1)
        # A replica lost after its first update: the error names it.
        if e["json"].get("specialist") != "RiskAnalyst" or \
            e["json"].get("instance", "").split(":")[0] != victim:
          raise TestFailure(f"kill: an error update that does not name the "
                            f"killed replica {victim}: {e['data']}")
        # ... and the answer says what is missing.
        final = s.messages()[-1]["json"]
        if "RiskAnalyst" not in final.get("result", {}).get("missing", []):
          raise TestFailure("kill: a run with a lost replica does not say "
                            f"RiskAnalyst is missing: {final}")
      if started > t_killed + 1.0:
        later += 1
        if not hosts or not hosts <= survivors:
          raise TestFailure(f"kill: a run started {started - t_killed:.1f}s "
                            f"after the kill used {hosts}, survivors "
                            f"{sorted(survivors)}")
    self.figures["kill_orchestrator_retries"] = self.orchestrator_counter(
        "specialist_retries_total") - retries0
    self.figures["kill_runs_total"] = len(results)
    self.figures["kill_runs_touching_victim"] = hit
    self.figures["kill_runs_with_error_update"] = errors
    self.figures["kill_runs_after_kill"] = later
    log(f"kill: {len(results)} runs, all complete+done; {hit} touched the "
        f"killed replica ({errors} with an error update; the orchestrator "
        f"retried {self.figures['kill_orchestrator_retries']} calls on "
        f"another replica); {later} later runs all on survivors")
    if later < 3:
      raise TestFailure(f"kill: only {later} runs after the kill")

  def step_replicas(self):
    """The compose default: two orchestrators and one redis, all healthy,
    the redis keeping an append-only file."""
    self.wait_healthy("orchestrator", 2, timeout=60)
    redis = self.wait_healthy("redis", 1, timeout=60)
    p = self.docker.run(["docker", "exec", redis[0], "redis-cli", "CONFIG",
                         "GET", "appendonly"], timeout=30)
    if p.stdout.split() != ["appendonly", "yes"]:
      raise TestFailure(f"redis: appendonly {p.stdout.split()}")
    self.redis_id = redis[0]
    log("two orchestrator replicas and redis (appendonly yes) healthy")

  def run_owners(self):
    """{run id: owner replica id} of every live run, from the store."""
    p = self.docker.run(
        ["docker", "exec", self.redis_id, "/bin/sh", "-c",
         'for id in $(redis-cli ZRANGE agentstream:leases 0 -1); do '
         'echo "$id $(redis-cli HGET "agentstream:{$id}:meta" owner)"; '
         'done'], timeout=30)
    return dict(line.split()[:2] for line in p.stdout.splitlines()
                if len(line.split()) >= 2)

  @staticmethod
  def runs_taken_over(metrics):
    return sum(int(n) for n in re.findall(
        r"^agentstream_orchestrator_runs_taken_over_total(?:\{[^}]*\})? "
        r"(\d+)", metrics, re.M))

  def step_orchestrator_kill(self, runs=8):
    self.wait_specialist_available("Synthetic")
    ids = self.wait_healthy("orchestrator", 2, timeout=60)
    # Synthetic: 30 partial results at 5/s, a run of about 6 s.
    opts = json.dumps({"count": 30, "rate": 5})
    results = [None] * runs

    def client(i):
      results[i] = follow_to_end(
          self.http_port, query(f"orchestrator kill {i}",
                                specialists="Synthetic", options=opts),
          self.token, self.budget.bound(90))

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(runs)]
    for t in threads:
      t.start()
    # Every run live in the store, then the replica owning most is killed.
    owners = {}
    deadline = time.monotonic() + self.budget.bound(20)
    while time.monotonic() < deadline and len(owners) < runs:
      time.sleep(0.3)
      owners = self.run_owners()
    if len(owners) != runs:
      raise TestFailure(f"orchestrator kill: {len(owners)} live runs in the "
                        f"store, want {runs}: {owners}")
    hosts = {self.docker.inspect(c)["Config"]["Hostname"]: c for c in ids}
    by_host = {}
    for rid, owner in owners.items():
      by_host.setdefault(owner.rsplit("-", 1)[0], set()).add(rid)
    if not set(by_host) <= set(hosts):
      raise TestFailure(f"orchestrator kill: owners {sorted(by_host)} are not "
                        f"the replicas {sorted(hosts)}")
    victim_host = max(by_host, key=lambda h: len(by_host[h]))
    victim = hosts[victim_host]
    survivor = next(c for c in ids if c != victim)
    owned = by_host[victim_host]
    taken0 = self.runs_taken_over(self.orchestrator_metrics([survivor]))
    time.sleep(1.0)  # a few updates into each run
    t_kill = time.time()
    self.docker.run(["docker", "kill", victim], timeout=60)
    log(f"killed orchestrator {victim_host} (SIGKILL), owner of "
        f"{len(owned)} of the {runs} runs")
    for t in threads:
      t.join(timeout=self.budget.bound(120))
    taken_metric = self.runs_taken_over(
        self.orchestrator_metrics([survivor])) - taken0
    took = set()
    cut = 0
    unavailable = 0
    for i, r in enumerate(results):
      if r is None:
        raise TestFailure(f"orchestrator kill: client {i} did not finish")
      bad = r.check()
      if bad:
        raise TestFailure(f"orchestrator kill: run {r.run_id}: {bad}")
      if r.events[0]["t"] > t_kill:
        raise TestFailure(f"orchestrator kill: run {r.run_id} started after "
                          "the kill")
      cut += len(r.statuses) > 1
      unavailable += r.statuses.count(503)
      notes = [e["json"].get("message", "") for e in r.messages()
               if e["json"].get("type") == "status" and
               "took this run over" in e["json"].get("message", "")]
      if notes:
        took.add(r.run_id)
        if victim_host not in notes[0]:
          raise TestFailure(f"orchestrator kill: the takeover note does not "
                            f"name the killed replica {victim_host}: "
                            f"{notes[0]}")
    done_s = time.time() - t_kill
    self.figures["orchestrator_kill_runs"] = runs
    self.figures["orchestrator_kill_owned_by_victim"] = len(owned)
    self.figures["orchestrator_kill_taken_over"] = len(took)
    self.figures["orchestrator_kill_streams_cut"] = cut
    self.figures["orchestrator_kill_503s"] = unavailable
    self.figures["orchestrator_kill_all_done_after_s"] = round(done_s, 1)
    log(f"orchestrator kill: {runs} runs whole (seq 1..N, complete, done); "
        f"{cut} clients resumed ({unavailable} 503s on the way); "
        f"{len(took)} runs taken over by the survivor (its "
        f"runs_taken_over_total +{taken_metric}); all done {done_s:.1f}s "
        "after the kill")
    if took != owned:
      raise TestFailure(f"orchestrator kill: runs taken over {sorted(took)} "
                        f"!= the killed replica's {sorted(owned)}")
    if taken_metric != len(took):
      raise TestFailure(f"orchestrator kill: runs_taken_over_total "
                        f"+{taken_metric}, {len(took)} runs say so")
    if cut < len(owned):
      raise TestFailure(f"orchestrator kill: {cut} clients resumed, the "
                        f"killed replica owned {len(owned)} runs")

  def wait_specialist_available(self, name, timeout=60):
    deadline = time.monotonic() + self.budget.bound(timeout)
    last = None
    while time.monotonic() < deadline:
      with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                          timeout=5)
        conn.request("GET", "/api/specialists", headers=bearer(self.token))
        last = json.loads(conn.getresponse().read())
        conn.close()
        if any(c.get("name") == name and c.get("available")
               for c in last.get("specialists", [])):
          return
      time.sleep(0.5)
    raise TestFailure(f"{name} not available within {timeout}s: {last}")

  def step_edge(self):
    if self.edge_missing:
      raise TestFailure("edge: " + self.edge_missing)
    self.up("--no-recreate", "edge", profiles=("edge", "synthetic"))
    self.wait_specialist_available("Synthetic")
    self.wait_edge_listening()
    self.step_edge_auth()
    # Synthetic: 20 partial results at 10/s, a run of about 2 s.
    opts = json.dumps({"count": 20, "rate": 10})
    url = (f"https://127.0.0.1:{self.https_port}/api/chat/stream?" +
           query("edge streaming check", specialists="Synthetic",
                 options=opts))
    deadline = time.monotonic() + self.budget.bound(90)
    last = None
    while True:
      s, http_version = self.curl_stream(url)
      if s.complete_and_done():
        break
      last = s.summary()
      if time.monotonic() > deadline:
        raise TestFailure(f"edge: no complete stream: {last}")
      time.sleep(1)
    if http_version != "2":
      raise TestFailure(f"edge: HTTP version {http_version}, want 2")
    msgs = s.messages()
    partials = s.types().count("partial_result")
    if msgs[-1]["json"].get("outcome") != "ok" or partials != 20:
      raise TestFailure(f"edge: outcome {msgs[-1]['json'].get('outcome')}, "
                        f"{partials} partial results (want ok, 20)")
    first_t = msgs[0]["t"]
    complete_ns = msgs[-1]["json"].get("emitted_at_ns")
    if not complete_ns:
      raise TestFailure("edge: complete has no emitted_at_ns")
    margin = complete_ns / 1e9 - first_t
    self.figures["edge_first_update_before_complete_s"] = round(margin, 2)
    log(f"edge: HTTP/2, {len(msgs)} updates; the first arrived "
        f"{margin:.2f}s before the run completed")
    if margin <= 0.5:
      raise TestFailure(f"edge: first update arrived {margin:.2f}s before "
                        "the run completed: buffered")

  def wait_edge_listening(self, timeout=30):
    """`up` returns once the edge's container runs; nginx listens a moment
    later (the published port accepts before that and drops the
    connection): until /healthz answers through it."""
    deadline = time.monotonic() + self.budget.bound(timeout)
    last = None
    while time.monotonic() < deadline:
      p = subprocess.run(
          ["curl", "-sS", "-k", "--max-time", "5", "-o", "/dev/null", "-w",
           "%{http_code}", f"https://127.0.0.1:{self.https_port}/healthz"],
          capture_output=True, text=True, timeout=15, check=False)
      if p.stdout.strip() == "200":
        return
      last = f"{p.stdout.strip()} {p.stderr.strip()[-200:]}"
      time.sleep(0.3)
    raise TestFailure(f"edge: not answering within {timeout}s: {last}")

  def curl_stream(self, url):
    """Streams with curl over HTTP/2 (TLS, self-signed: -k), timestamping
    each line as it arrives."""
    s = Stream()
    s.started = time.time()
    hdr = os.path.join(self.tmp, "edge-headers.txt")
    p = subprocess.Popen(
        ["curl", "-sS", "-N", "-k", "--http2", "--max-time", "60",
         "-D", hdr, "-H", "Accept: text/event-stream", "-H",
         f"Authorization: Bearer {self.token}", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def lines():
      for raw in p.stdout:
        yield raw.decode("utf-8").rstrip("\r\n"), time.time()

    for ev in parse_sse_lines(lines()):
      s.events.append(ev)
    try:
      p.wait(timeout=70)
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()
    http_version = None
    with contextlib.suppress(OSError):
      with open(hdr) as f:
        first = f.readline().split()
        if first:
          http_version = first[0].split("/")[-1]
          s.status = int(first[1]) if len(first) > 1 else None
    if p.returncode != 0:
      s.error = f"curl exit {p.returncode}: " + \
          p.stderr.read().decode(errors="replace")[-300:]
    return s, http_version

  def take_down(self):
    d = self.docker
    p = d.compose(["down", "-v", "--remove-orphans", "--timeout", "10"],
                  profiles=("edge", "synthetic"), timeout=180, check=False)
    if p.returncode != 0:
      log("compose down failed: " + p.stderr[-1000:])
    label = f"label=com.docker.compose.project={self.project}"
    left = {
        "containers": d.run(["docker", "ps", "-aq", "--filter", label],
                            timeout=30).stdout.split(),
        "networks": d.run(["docker", "network", "ls", "-q", "--filter",
                           label], timeout=30).stdout.split(),
        "volumes": d.run(["docker", "volume", "ls", "-q", "--filter", label],
                         timeout=30).stdout.split(),
    }
    # Anonymous volumes carry no label: none may exist at all.
    left["volumes"] += [v for v in d.run(["docker", "volume", "ls", "-q"],
                                         timeout=30).stdout.split()
                        if v not in left["volumes"]]
    return {k: v for k, v in left.items() if v}

  def save_logs(self):
    if not self.docker:
      return
    with contextlib.suppress(Exception):
      p = self.docker.compose(["logs", "--no-color", "--timestamps"],
                              profiles=("edge", "synthetic"), timeout=60,
                              check=False)
      with open(os.path.join(self.args.artifacts, "compose.log"), "w") as f:
        f.write(p.stdout + p.stderr)

  # -- the whole run ---------------------------------------------------------

  def run(self):
    failure = None
    try:
      self.start_dockerd()
      self.ensure_base_image()
      self.build_images()
      self.http_port = free_port()
      self.https_port = free_port()
      log(f"project {self.project}: gateway on 127.0.0.1:{self.http_port}, "
          f"edge on 127.0.0.1:{self.https_port}")
      t0 = time.monotonic()
      self.project_up = True
      # The synthetic specialist (profile) starts with the rest: the edge
      # step streams from it.
      self.up()
      self.wait_ready()
      self.figures["compose_up_s"] = round(time.monotonic() - t0, 1)
      log(f"compose up and ready in {self.figures['compose_up_s']}s")
      self.read_operator_token()
      self.step_replicas()
      self.step_first_question()
      self.step_mtls()
      self.step_auth()
      names3 = self.step_scale_3()
      names4 = self.step_scale_4(names3)
      self.step_kill(names4)
      self.step_orchestrator_kill()
      self.step_edge()
    except (TestFailure, Skip) as e:
      failure = e
    except Exception as e:  # pylint: disable=broad-except
      failure = TestFailure(f"{type(e).__name__}: {e}")
    finally:
      leftovers = None
      if self.project_up:
        self.save_logs()
        try:
          leftovers = self.take_down()
        except Exception as e:  # pylint: disable=broad-except
          leftovers = {"error": str(e)}
      self.stop_dockerd()
    self.figures["total_s"] = round(self.budget.elapsed())
    log("figures: " + json.dumps(self.figures, sort_keys=True))
    if isinstance(failure, Skip):
      return skip_or_fail("compose-e2e",
                          f"no Docker capability here: {failure}")
    if failure:
      log(f"FAILED: {failure}")
      log(f"artifacts: {self.args.artifacts}")
      return 1
    if leftovers:
      log(f"FAILED: left behind after down: {leftovers}")
      return 1
    log(f"PASSED in {self.figures['total_s']}s; nothing left behind")
    return 0


def main():
  here = os.path.dirname(os.path.abspath(__file__))
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--source-dir",
                  default=os.path.abspath(os.path.join(here, "../../..")))
  ap.add_argument("--cache-dir", default=os.environ.get(
      "AGENTSTREAM_E2E_CACHE", os.path.join(os.getcwd(), "cache")),
                  help="keeps the debootstrap tarball between runs")
  ap.add_argument("--artifacts", default=os.environ.get(
      "AGENTSTREAM_E2E_ARTIFACTS", os.path.join(os.getcwd(), "artifacts")))
  ap.add_argument("--budget-s", type=float, default=float(os.environ.get(
      "AGENTSTREAM_COMPOSE_E2E_BUDGET_S", 19 * 60)))
  ap.add_argument("--jobs", type=int, default=2)
  args = ap.parse_args()

  test = ComposeE2E(args)

  def on_signal(signum, _frame):
    raise TestFailure(f"signal {signum}")

  signal.signal(signal.SIGTERM, on_signal)
  signal.signal(signal.SIGINT, on_signal)
  sys.exit(test.run())


if __name__ == "__main__":
  main()
