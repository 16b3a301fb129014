#!/usr/bin/env python3
"""The engine half of compose_e2e.py: its own dockerd, the debootstrap base
image, the image builds, compose commands, and the HTTP/SSE client the steps
use."""

import calendar
import contextlib
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import http.client

QUESTION = ("Assess the risk and AML compliance of account ACC-1042 over the "
            "last 6 months")
SEED_TYPES = ("status", "specialist_activated", "progress", "thinking",
              "tool_call", "partial_result", "synthesis",
              "specialist_complete", "complete")


class TestFailure(Exception):
  pass


class Skip(Exception):
  pass


def log(msg):
  print(f"[compose-e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Budget:
  """The whole test's deadline; every wait takes the smaller of its own
  bound and what is left."""

  def __init__(self, seconds):
    self.start = time.monotonic()
    self.end = self.start + seconds

  def left(self):
    return self.end - time.monotonic()

  def bound(self, seconds):
    left = self.left()
    if left <= 0:
      raise TestFailure("the test's time budget is spent")
    return min(seconds, left)

  def elapsed(self):
    return time.monotonic() - self.start


def die_with_parent():
  # dockerd gets SIGTERM if this process dies without cleaning up (e.g.
  # killed by ctest's timeout).
  try:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


def docker_time(text):
  """Docker's RFC 3339 time with nanoseconds -> seconds since the epoch."""
  m = re.match(r"(\d+-\d+-\d+T\d+:\d+:\d+)(?:\.(\d+))?Z$", text)
  if not m:
    raise TestFailure(f"unexpected time from docker: {text}")
  whole = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
  frac = float("0." + m.group(2)) if m.group(2) else 0.0
  return whole + frac


def free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Docker:
  """Runs docker / compose commands against our own dockerd."""

  def __init__(self, env, budget, compose_cmd, compose_file, project):
    self.env = env
    self.budget = budget
    self.compose_cmd = compose_cmd
    self.compose_file = compose_file
    self.project = project

  def run(self, args, timeout=60, check=True, quiet=False, env_extra=None):
    env = dict(self.env)
    if env_extra:
      env.update(env_extra)
    t = self.budget.bound(timeout)
    try:
      p = subprocess.run(args, env=env, capture_output=True, text=True,
                         timeout=t)
    except subprocess.TimeoutExpired as e:
      raise TestFailure(f"timed out after {t:.0f}s: {' '.join(args)}") from e
    if check and p.returncode != 0:
      raise TestFailure(f"failed ({p.returncode}): {' '.join(args)}\n"
                        f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    if not quiet and p.returncode != 0:
      log(f"(exit {p.returncode}) {' '.join(args)}: {p.stderr.strip()[-500:]}")
    return p

  def compose(self, args, timeout=180, check=True, profiles=()):
    cmd = list(self.compose_cmd) + ["-p", self.project, "-f",
                                    self.compose_file]
    for prof in profiles:
      cmd += ["--profile", prof]
    return self.run(cmd + list(args), timeout=timeout, check=check)

  def containers(self, service=None, all_states=False):
    args = ["docker", "ps", "-q", "--no-trunc", "--filter",
            f"label=com.docker.compose.project={self.project}"]
    if service:
      args += ["--filter", f"label=com.docker.compose.service={service}"]
    if all_states:
      args.append("-a")
    out = self.run(args, timeout=30).stdout.split()
    return out

  def inspect(self, cid):
    out = self.run(["docker", "inspect", cid], timeout=30).stdout
    return json.loads(out)[0]


# ---- SSE over HTTP/1.1 (the gateway) ---------------------------------------


def parse_sse_lines(lines_with_time):
  """Yields events {id, event, data, json, t} from (line, t) pairs."""
  ev = {"id": None, "event": "message", "data": []}
  for line, t in lines_with_time:
    if line == "":
      if ev["data"]:
        data = "\n".join(ev["data"])
        try:
          parsed = json.loads(data)
        except ValueError:
          parsed = None
        yield {"id": ev["id"], "event": ev["event"], "data": data,
               "json": parsed, "t": t}
      ev = {"id": None, "event": "message", "data": []}
      continue
    if line.startswith(":"):
      continue
    field, _, value = line.partition(":")
    if value.startswith(" "):
      value = value[1:]
    if field == "data":
      ev["data"].append(value)
    elif field == "event":
      ev["event"] = value
    elif field == "id":
      ev["id"] = value


class Stream:
  """One finished SSE exchange."""

  def __init__(self):
    self.status = None
    self.headers = {}
    self.events = []
    self.started = None  # time.time() when the request was sent
    self.error = None

  def messages(self):
    return [e for e in self.events
            if e["event"] == "message" and e["json"] is not None]

  def types(self):
    return [e["json"].get("type") for e in self.messages()]

  def instances(self, specialist):
    return {e["json"]["instance"] for e in self.messages()
            if e["json"].get("specialist") == specialist and
            e["json"].get("instance")}

  def complete_and_done(self):
    msgs = self.messages()
    return (self.status == 200 and bool(msgs) and
            msgs[-1]["json"].get("type") == "complete" and
            bool(self.events) and self.events[-1]["event"] == "done")

  def summary(self):
    return (f"status={self.status} error={self.error} "
            f"types={self.types()[-6:]} last_event="
            f"{self.events[-1]['event'] if self.events else None}")


def bearer(token):
  """The request headers that carry `token` (none for None)."""
  return {"Authorization": f"Bearer {token}"} if token else {}


def ask(port, query, timeout=60, token=None, path=None, headers=None):
  """GET /api/chat/stream?<query> (or `path`) on 127.0.0.1:port with
  `token` as the bearer token (and `headers`); reads to the end."""
  s = Stream()
  s.started = time.time()
  conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
  deadline = time.monotonic() + timeout
  try:
    conn.request("GET", path or "/api/chat/stream?" + query,
                 headers={"Accept": "text/event-stream", **bearer(token),
                          **(headers or {})})
    resp = conn.getresponse()
    s.status = resp.status
    s.headers = {k.lower(): v for k, v in resp.getheaders()}
    if resp.status != 200:
      s.error = resp.read().decode("utf-8", "replace")[:300]
      return s

    def lines():
      while time.monotonic() < deadline:
        raw = resp.readline()
        if not raw:
          return
        yield raw.decode("utf-8").rstrip("\r\n"), time.time()

    for ev in parse_sse_lines(lines()):
      s.events.append(ev)
      if ev["event"] == "done":
        break
  except (OSError, http.client.HTTPException) as e:
    s.error = repr(e)
  finally:
    conn.close()
  return s


class Followed:
  """A run followed to its end across cuts (follow_to_end)."""

  def __init__(self):
    self.run_id = None
    self.events = []  # every event of every response, in order
    self.statuses = []  # each response's HTTP status (0: no response)
    self.done = False
    self.error = None

  def messages(self):
    return [e for e in self.events
            if e["event"] == "message" and e["json"] is not None]

  def check(self):
    """None when the run arrived whole: seq 1..N once each, `complete`
    last, then `done`; else what is wrong."""
    if not self.done:
      return f"not done ({self.error}; HTTP {self.statuses})"
    msgs = self.messages()
    seqs = [e["json"].get("seq") for e in msgs]
    if seqs != list(range(1, len(seqs) + 1)):
      return f"seqs not 1..N once each: {seqs}"
    if not msgs or msgs[-1]["json"].get("type") != "complete":
      return "the last update is not `complete`"
    if self.events[-1]["event"] != "done" and self.statuses[-1] != 204:
      return f"ends with {self.events[-1]['event']}, not done"
    return None


def follow_to_end(port, first_query, token, deadline_s):
  """Starts a run (GET /api/chat/stream?first_query) and follows it to
  `done` as an EventSource would: after a cut, an `unavailable` error or a
  503 it resumes with Last-Event-ID (the last id it got) on
  /api/runs/{id}/stream; 204 (nothing after that id, the run over) ends it
  too."""
  out = Followed()
  until = time.monotonic() + deadline_s
  last_id = None
  path = None
  while time.monotonic() < until:
    headers = {"Last-Event-ID": last_id} if last_id else None
    s = ask(port, first_query, timeout=max(1.0, until - time.monotonic()),
            token=token, path=path, headers=headers)
    out.statuses.append(s.status or 0)
    if out.run_id is None and s.status == 200:
      out.run_id = s.headers.get("x-request-id")
    for e in s.events:
      out.events.append(e)
      if e["id"]:
        last_id = e["id"]
      if e["event"] == "done":
        out.done = True
    if out.done or s.status == 204:
      out.done = True
      return out
    if s.status not in (200, 503, None):
      out.error = f"HTTP {s.status}: {s.error}"
      return out
    if out.run_id is None:
      out.error = f"no run id: {s.summary()}"
      return out
    path = f"/api/runs/{out.run_id}/stream"
    last_id = last_id or f"{out.run_id}:0"
    time.sleep(0.2 if s.status == 503 else 0.02)
  out.error = "deadline"
  return out


def query(message, **extra):
  params = {"message": message}
  params.update(extra)
  return urllib.parse.urlencode(params)


class ComposeEngine:
  """The Docker engine, images and compose project a ComposeE2E drives."""

  def __init__(self, args):
    self.args = args
    self.src = os.path.abspath(args.source_dir)
    self.cache_dir = os.path.abspath(args.cache_dir)
    self.budget = Budget(args.budget_s)
    self.tmp = None
    self.dockerd = None
    self.docker = None
    self.project = f"ase2e{os.getpid()}{random.randrange(1000, 9999)}"
    self.http_port = None
    self.https_port = None
    self.figures = {}
    self.redis_id = None
    self.project_up = False
    self.edge_missing = None

  # -- capability ----------------------------------------------------------

  def need(self, ok, what):
    if not ok:
      raise Skip(what)

  def find_compose(self, env):
    override = os.environ.get("AGENTSTREAM_COMPOSE")
    if override:
      return override.split()
    # Prefer docker compose v2 where it is installed; Debian 12 has v1.
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
      p = subprocess.run(["docker", "compose", "version"], env=env,
                         capture_output=True, text=True, timeout=20)
      if p.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
      return ["docker-compose"]
    return None

  # -- dockerd ---------------------------------------------------------------

  def start_dockerd(self):
    self.need(os.geteuid() == 0,
              "dockerd needs root (run the test as root)")
    for tool in ("dockerd", "docker", "containerd", "runc"):
      self.need(shutil.which(tool),
                f"{tool} not found: deploy/local/install_deps.sh test "
                "installs docker.io, docker-compose and debootstrap")
    # Unix socket paths are short-limited: the exec root lives in /tmp.
    self.tmp = tempfile.mkdtemp(prefix="ase2e-")
    data_root = os.environ.get("AGENTSTREAM_E2E_DOCKER_DATA_ROOT") or \
        os.path.join(self.tmp, "data")
    os.makedirs(data_root, exist_ok=True)
    self.data_root = data_root
    sock = os.path.join(self.tmp, "docker.sock")
    self.dockerd_log = os.path.join(self.args.artifacts, "dockerd.log")
    os.makedirs(self.args.artifacts, exist_ok=True)
    cmd = ["dockerd", "--data-root", data_root,
           "--exec-root", os.path.join(self.tmp, "exec"),
           "--pidfile", os.path.join(self.tmp, "dockerd.pid"),
           "-H", f"unix://{sock}",
           # No docker0: our daemon may share the host with another one.
           "--bridge=none",
           "--userland-proxy=true",
           "--log-level=warn"]
    log("starting " + " ".join(cmd))
    logf = open(self.dockerd_log, "w")
    self.dockerd = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    preexec_fn=die_with_parent)
    logf.close()
    env = dict(os.environ)
    env["DOCKER_HOST"] = f"unix://{sock}"
    env.pop("DOCKER_CONTEXT", None)
    env["DOCKER_BUILDKIT"] = "0"
    env["COMPOSE_DOCKER_CLI_BUILD"] = "0"
    env["COMPOSE_INTERACTIVE_NO_CLI"] = "1"
    deadline = time.monotonic() + self.budget.bound(60)
    while True:
      if self.dockerd.poll() is not None:
        raise Skip(f"dockerd exited with {self.dockerd.returncode} at start; "
                   f"its log: {self.tail(self.dockerd_log)}")
      p = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                         env=env, capture_output=True, text=True, timeout=20)
      if p.returncode == 0:
        log(f"dockerd {p.stdout.strip()} up (pid {self.dockerd.pid})")
        break
      if time.monotonic() > deadline:
        raise Skip("dockerd did not answer within 60 s; its log: " +
                   self.tail(self.dockerd_log))
      time.sleep(0.5)
    compose = self.find_compose(env)
    self.need(compose, "neither `docker compose` nor docker-compose found")
    log(f"compose: {' '.join(compose)}")
    self.docker = Docker(env, self.budget, compose,
                         os.path.join(self.src, "docker-compose.yml"),
                         self.project)
    # A container must be able to start here (namespaces, cgroups, overlay):
    # tried with the base image below.

  @staticmethod
  def tail(path, n=30):
    with contextlib.suppress(OSError):
      with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])
    return "(no log)"

  def stop_dockerd(self):
    if not self.dockerd:
      return
    if self.dockerd.poll() is None:
      log(f"stopping dockerd (pid {self.dockerd.pid})")
      self.dockerd.send_signal(signal.SIGTERM)
      try:
        self.dockerd.wait(timeout=45)
      except subprocess.TimeoutExpired:
        log("dockerd did not stop within 45 s: SIGKILL")
        self.dockerd.kill()
        self.dockerd.wait(timeout=15)
    self.dockerd = None
    if self.tmp:
      # A clean dockerd stop leaves no mounts; unmount what a killed one left
      # under our own directory only, deepest first.
      with contextlib.suppress(OSError):
        with open("/proc/self/mounts") as f:
          mounts = [l.split()[1] for l in f]
        for m in sorted((m for m in mounts if m.startswith(self.tmp)),
                        key=len, reverse=True):
          subprocess.run(["umount", "-l", m], capture_output=True)
      shutil.rmtree(self.tmp, ignore_errors=True)

  # -- images ----------------------------------------------------------------

  def ensure_base_image(self):
    d = self.docker
    if d.run(["docker", "image", "inspect", "debian:bookworm-slim"],
             check=False, quiet=True).returncode == 0:
      log("debian:bookworm-slim present")
    else:
      tarball = os.path.join(self.cache_dir, "bookworm-minbase.tar")
      if not os.path.exists(tarball):
        self.need(shutil.which("debootstrap"),
                  "debootstrap not found (needed once for the base image)")
        rootfs = os.path.join(self.tmp, "rootfs")
        log("debootstrap --variant=minbase bookworm (once; cached)")
        t0 = time.monotonic()
        p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm",
                            rootfs, "http://deb.debian.org/debian"],
                           capture_output=True, text=True,
                           timeout=self.budget.bound(600))
        if p.returncode != 0:
          raise TestFailure("debootstrap failed: " + p.stdout[-2000:] +
                            p.stderr[-2000:])
        # No package caches in the image.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
          for name in os.listdir(os.path.join(rootfs, sub)):
            path = os.path.join(rootfs, sub, name)
            if os.path.isfile(path):
              os.unlink(path)
        os.makedirs(self.cache_dir, exist_ok=True)
        subprocess.run(["tar", "-C", rootfs, "-cf", tarball + ".part", "."],
                       check=True, timeout=self.budget.bound(300))
        os.replace(tarball + ".part", tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
        log(f"base root made in {time.monotonic() - t0:.0f}s")
      d.run(["docker", "import", tarball, "debian:bookworm-slim"],
            timeout=300)
      log("imported debian:bookworm-slim")
    # Can a container run at all here?
    p = d.run(["docker", "run", "--rm", "--network", "none",
               "debian:bookworm-slim", "true"], check=False, timeout=120)
    if p.returncode != 0:
      raise Skip("cannot run a container with this dockerd: " +
                 p.stderr.strip()[-1500:])

  def build_images(self):
    d = self.docker
    t0 = time.monotonic()
    log("building agentstream:latest")
    # --network host: this daemon has no default bridge.
    p = d.run(["docker", "build", "--network", "host", "-f",
               os.path.join(self.src, "deploy/docker/Dockerfile"),
               "--build-arg", f"BUILD_JOBS={self.args.jobs}",
               "-t", "agentstream:latest", self.src],
              timeout=self.budget.left() - 300, check=False)
    with open(os.path.join(self.args.artifacts, "build-agentstream.log"),
              "w") as f:
      f.write(p.stdout + p.stderr)
    if p.returncode != 0:
      raise TestFailure("docker build agentstream failed:\n" +
                        (p.stdout + p.stderr)[-4000:])
    self.figures["build_agentstream_s"] = round(time.monotonic() - t0)
    log(f"agentstream:latest built in {self.figures['build_agentstream_s']}s")
    edge_df = os.path.join(self.src, "deploy/nginx/Dockerfile")
    if not os.path.exists(edge_df):
      self.edge_missing = f"{edge_df} does not exist"
      log("edge: " + self.edge_missing)
      return
    t0 = time.monotonic()
    p = d.run(["docker", "build", "--network", "host", "-f", edge_df,
               "-t", "agentstream-edge:latest",
               os.path.join(self.src, "deploy/nginx")],
              timeout=600, check=False)
    with open(os.path.join(self.args.artifacts, "build-edge.log"), "w") as f:
      f.write(p.stdout + p.stderr)
    if p.returncode != 0:
      raise TestFailure("docker build agentstream-edge failed:\n" +
                        (p.stdout + p.stderr)[-4000:])
    self.figures["build_edge_s"] = round(time.monotonic() - t0)

  # -- compose ---------------------------------------------------------------

  def up(self, *extra, profiles=("synthetic",)):
    # Published on loopback only, on ports free now.
    self.docker.env["AGENTSTREAM_HTTP_PUBLISH"] = f"127.0.0.1:{self.http_port}"
    self.docker.env["AGENTSTREAM_HTTPS_PUBLISH"] = \
        f"127.0.0.1:{self.https_port}"
    return self.docker.compose(["up", "-d", "--no-build", *extra],
                               timeout=240, profiles=profiles)

  def wait_ready(self, timeout=120):
    deadline = time.monotonic() + self.budget.bound(timeout)
    last = None
    while time.monotonic() < deadline:
      try:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                          timeout=5)
        conn.request("GET", "/readyz")
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        conn.close()
        if r.status == 200:
          return
        last = f"{r.status} {body[:200]}"
      except (OSError, http.client.HTTPException) as e:
        last = repr(e)
      time.sleep(0.5)
    raise TestFailure(f"gateway not ready within {timeout}s: {last}")

  def wait_healthy(self, service, count, timeout=90):
    deadline = time.monotonic() + self.budget.bound(timeout)
    states = None
    while time.monotonic() < deadline:
      ids = self.docker.containers(service)
      states = [self.docker.inspect(c)["State"].get("Health", {})
                .get("Status") for c in ids]
      if len(ids) == count and all(s == "healthy" for s in states):
        return ids
      time.sleep(0.5)
    raise TestFailure(f"{service}: want {count} healthy, have {states}")

  def hostnames(self, ids):
    return {self.docker.inspect(c)["Config"]["Hostname"]: c for c in ids}

  def orchestrator_calls(self, specialist="RiskAnalyst"):
    """specialist_calls_total{instance} as the orchestrators count them
    (summed over the replicas)."""
    calls = {}
    pat = re.compile(r'^agentstream_orchestrator_specialist_calls_total\{'
                     r'specialist="([^"]*)",instance="([^"]*)"\} (\d+)', re.M)
    for spec, inst, n in pat.findall(self.orchestrator_metrics()):
      if spec == specialist:
        calls[inst] = calls.get(inst, 0) + int(n)
    return calls

  def orchestrator_metrics(self, ids=None):
    """Every running orchestrator replica's (or those of `ids`) /metrics,
    one after the other
    (port 9090 is not published: read from inside each container with
    bash's /dev/tcp; the image has no curl). Counters summed over the
    text are the deployment's."""
    ids = ids or self.docker.containers("orchestrator")
    if not ids:
      raise TestFailure("no orchestrator is running")
    texts = []
    for cid in ids:
      p = self.docker.run(
          ["docker", "exec", cid, "/bin/bash", "-c",
           "exec 3<>/dev/tcp/127.0.0.1/9090 && "
           "printf 'GET /metrics HTTP/1.0\\r\\nHost: o\\r\\n\\r\\n' >&3 && "
           "cat <&3"], timeout=60)
      if "agentstream_orchestrator_" not in p.stdout:
        raise TestFailure(f"orchestrator {cid[:12]} /metrics: " +
                          p.stdout[:300])
      texts.append(p.stdout)
    return "\n".join(texts)
