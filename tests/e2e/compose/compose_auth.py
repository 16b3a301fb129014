#!/usr/bin/env python3
"""The authentication steps of compose_e2e.py (docs/SECURITY.md,
"Deployments"): the operator's token read the way docs/DEPLOY.md says,
users added with the image's `token` kind, 401 without a token, and runs
that belong to their owner through the compose stack."""

import http.client
import re
import subprocess
import time

from compose_engine import (
    QUESTION,
    TestFailure,
    ask,
    bearer,
    log,
    query,
)

TOKEN_RE = re.compile(r"ast_[0-9a-f]{16}_[0-9a-f]{64}")


def http_call(port, method, path, headers=None, timeout=30):
  """(status, headers (lower-case), body) of one request to 127.0.0.1."""
  conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
  try:
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    body = r.read().decode("utf-8", "replace")
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body
  finally:
    conn.close()


class AuthSteps:
  """Mixed into ComposeE2E: needs self.docker, self.http_port,
  self.https_port, self.budget, self.figures."""

  token = None  # the operator's (scope agentstream:admin)

  def compose_as_typed(self, args, timeout):
    """A compose command as an operator types it. docker-compose 1.29
    runs `exec` and `run` through the docker CLI unless
    COMPOSE_INTERACTIVE_NO_CLI is set (the engine's default for the other
    steps); its own attach path can lose the output of a container that
    exits at once (seen: `token add`'s stdout, the token, missing, its
    stderr there), so these go through the CLI, as they do for a user."""
    d = self.docker
    cmd = list(d.compose_cmd) + ["-p", d.project, "-f", d.compose_file]
    return d.run(cmd + list(args), timeout=timeout,
                 env_extra={"COMPOSE_INTERACTIVE_NO_CLI": "0"})

  def read_operator_token(self):
    """docs/DEPLOY.md: `docker compose exec gateway cat
    /auth/operator.token` (-T: no terminal here)."""
    p = self.compose_as_typed(["exec", "-T", "gateway", "cat",
                               "/auth/operator.token"], timeout=60)
    found = TOKEN_RE.findall(p.stdout)
    if len(found) != 1 or p.stdout.strip() != found[0]:
      raise TestFailure(f"/auth/operator.token holds {p.stdout[:200]!r}, "
                        "not one token")
    self.token = found[0]
    log(f"operator token read from the gateway container "
        f"(ast_{found[0][4:20]}_...)")

  def add_user(self, name):
    """docs/DEPLOY.md: `docker compose run --rm -T auth token add --file
    /auth/tokens --name NAME`; the token is the one line on stdout."""
    p = self.compose_as_typed(["run", "--rm", "-T", "auth", "token", "add",
                               "--file", "/auth/tokens", "--name", name],
                              timeout=120)
    found = TOKEN_RE.findall(p.stdout)
    if len(found) != 1:
      raise TestFailure(f"token add {name}: stdout {p.stdout[-300:]!r}, "
                        f"stderr {p.stderr[-300:]!r}")
    return found[0]

  def wait_accepted(self, token, timeout=20):
    """The gateway re-reads the token file within a second of a request
    after it changed (docs/SECURITY.md, "Rotating keys"): bounded wait
    until `token` is let in."""
    deadline = time.monotonic() + self.budget.bound(timeout)
    while True:
      status, _, body = http_call(self.http_port, "GET", "/api/specialists",
                                  bearer(token))
      if status == 200:
        return
      if status != 401 or time.monotonic() > deadline:
        raise TestFailure(f"a new token: {status} {body[:200]}")
      time.sleep(0.3)

  def step_auth(self):
    port = self.http_port
    # No token, a token nobody issued: 401 with the Bearer challenge.
    forged = "ast_" + "0" * 16 + "_" + "0" * 64
    for what, headers in (("no token", {}), ("an unknown token",
                                             bearer(forged))):
      for method, path in (("GET", "/api/chat/stream?" + query(QUESTION)),
                           ("GET", "/api/specialists"),
                           ("DELETE", "/api/runs/run_x")):
        status, hdrs, body = http_call(port, method, path, headers)
        if status != 401 or not hdrs.get("www-authenticate", "").startswith(
            "Bearer"):
          raise TestFailure(f"{what}: {method} {path.split('?')[0]}: "
                            f"{status} {hdrs.get('www-authenticate')!r} "
                            f"{body[:200]}")
    # The health check stays open (the image's HEALTHCHECK relies on it).
    status, _, body = http_call(port, "GET", "/healthz")
    if status != 200:
      raise TestFailure(f"/healthz without a token: {status} {body[:200]}")
    log("auth: no token and an unknown token get 401 with "
        "WWW-Authenticate: Bearer; /healthz stays open")

    t0 = time.monotonic()
    alice = self.add_user("alice")
    bob = self.add_user("bob")
    self.wait_accepted(alice)
    self.wait_accepted(bob)
    self.figures["auth_users_added_and_accepted_s"] = round(
        time.monotonic() - t0, 1)
    listing = self.compose_as_typed(["run", "--rm", "-T", "auth", "token",
                                     "list", "--file", "/auth/tokens"],
                                    timeout=120).stdout
    names = sorted(line.split()[1] for line in listing.splitlines()
                   if len(line.split()) == 3)
    if names != ["alice", "bob", "operator"]:
      raise TestFailure(f"token list: {listing!r}")
    if TOKEN_RE.search(listing):
      raise TestFailure("token list shows a token")

    # Alice's run: hers, the operator's, nobody else's.
    s = ask(port, query(QUESTION), timeout=60, token=alice)
    if not s.complete_and_done():
      raise TestFailure("alice's question: " + s.summary())
    rid = s.headers.get("x-request-id", "")
    if not rid.startswith("run_") or s.events[0]["json"].get(
        "request_id") != rid:
      raise TestFailure(f"alice's run id {rid!r} (want a generated run_...)")
    path = f"/api/runs/{rid}/stream"
    unknown = "/api/runs/run_" + "0" * 32 + "/stream"
    theirs = http_call(port, "GET", path, bearer(bob))
    none = http_call(port, "GET", unknown, bearer(bob))
    if theirs[0] != 404 or none[0] != 404 or \
        theirs[2].replace(rid, "ID") != none[2].replace(
            "run_" + "0" * 32, "ID"):
      raise TestFailure(f"bob attaching to alice's run: {theirs[0]} "
                        f"{theirs[2][:200]} (unknown run: {none[0]} "
                        f"{none[2][:200]})")
    cancel = http_call(port, "DELETE", f"/api/runs/{rid}", bearer(bob))
    if cancel[0] != 404:
      raise TestFailure(f"bob cancelling alice's run: {cancel[0]} "
                        f"{cancel[2][:200]}")
    for who, token in (("alice", alice), ("the operator", self.token)):
      again = ask(port, "", timeout=60, token=token, path=path)
      if not again.complete_and_done() or len(again.messages()) != len(
          s.messages()):
        raise TestFailure(f"{who} attaching to alice's run: "
                          f"{again.summary()} ({len(again.messages())} of "
                          f"{len(s.messages())} updates)")
    log(f"auth: users alice and bob added with `token add` (accepted "
        f"within {self.figures['auth_users_added_and_accepted_s']}s); "
        f"alice's run {rid}: bob gets 404 on attach and cancel (as for an "
        f"unknown run), alice and the operator attach ({len(s.messages())} "
        "updates)")

  def step_edge_auth(self):
    """Through the edge: 401 without a token; the token in the cookie
    EventSource sends (agentstream_token) or the header passes."""
    base = f"https://127.0.0.1:{self.https_port}"
    cases = (("no token", [], 401),
             ("cookie", ["--cookie", f"agentstream_token={self.token}"], 200),
             ("header", ["-H", f"Authorization: Bearer {self.token}"], 200))
    for what, extra, want in cases:
      p = subprocess.run(
          ["curl", "-sS", "-k", "--http2", "--max-time", "20", "-o",
           "/dev/null", "-w", "%{http_code}", *extra,
           base + "/api/specialists"], capture_output=True, text=True,
          timeout=self.budget.bound(30), check=False)
      if p.stdout.strip() != str(want):
        raise TestFailure(f"edge, {what}: HTTP {p.stdout.strip()!r} (want "
                          f"{want}) {p.stderr[-300:]}")
    log("edge: no token 401; the token as cookie or bearer header passes")
