// Orchestrator replicas added while runs stream (docs/SCALING.md, "Adding
// replicas"). The gateway reaches the replicas by one DNS name, as it does
// under Docker's and Kubernetes' DNS: here a DnsServer on loopback, which
// the gateway's target names as its resolver. The replicas listen on
// 127.0.0.2 and 127.0.0.3, on one port, and share a real redis-server.
//
// Under a steady load of runs through the gateway, a second replica starts
// and the name's answer gains it: new runs reach it within seconds (the
// first replica's --max-connection-age-ms sends the gateway's connection
// away, which makes the gateway resolve the name again; its
// --session-max-age-ms moves its sessions to new calls, which round robin
// spreads over both), and no stream is cut: every run, before and after,
// ends with `complete` and `done` on its one connection, seq dense.
#include <atomic>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/run_store_util.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"
#include "tests/testing/dns_server.h"

namespace agentstream::testing {
namespace {

constexpr char kName[] = "orchestrators.agentstream.test";

class ScaleOutTest : public TopologyTest {
 protected:
  void SetUp() override {
    auto dns = DnsServer::Start();
    ASSERT_TRUE(dns.ok()) << dns.status();
    dns_ = std::move(*dns);
    dns_->Set(kName, {"127.0.0.2"});
    TopologyOptions options = SyntheticOnlyOptions();
    options.redis = true;
    options.orchestrator_hosts = {"127.0.0.2"};
    options.gateway_orchestrator_target =
        absl::StrCat("dns://127.0.0.1:", dns_->port(), "/", kName, ":{port}");
    options.extra_orchestrator_args = {"--max-connection-age-ms=1000"};
    options.extra_gateway_args = {"--session-max-age-ms=500",
                                  "--run-starts-per-second=2000",
                                  "--run-start-burst=2000"};
    StartTopology(options);
  }

  std::unique_ptr<DnsServer> dns_;
};

struct Outcome {
  absl::Time started;
  std::string run_id;
  std::string problem;  // Empty: complete, dense, `done`, on one connection.
};

TEST_F(ScaleOutTest, AReplicaAddedUnderLoadGetsNewRunsAndNoStreamIsCut) {
  const int port = topology_->gateway_port();
  // Runs of about 0.6 s (60 updates at 100/s), four clients back to back.
  const std::string path =
      SyntheticChatPath({{"count", 60}, {"size", 64}, {"rate", 100}});
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  std::vector<Outcome> outcomes;
  auto client = [&] {
    while (!stop.load()) {
      Outcome o;
      o.started = absl::Now();
      RawSseResult r =
          RawSse(NewRunRequest(port, path, "scale", absl::Seconds(30)));
      o.run_id = r.RunId();
      if (r.status != 200) {
        o.problem = absl::StrCat("HTTP ", r.status, " ", r.error, r.body);
      } else {
        o.problem = CheckDenseRun(MessagesOf(r), o.run_id);
        if (!r.EndedWithDone()) {
          o.problem += absl::StrCat(" no `done` (", r.error, ")");
        }
      }
      absl::MutexLock lock(&mu);
      outcomes.push_back(std::move(o));
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(client);
  auto count = [&] {
    absl::MutexLock lock(&mu);
    return outcomes.size();
  };

  // One replica: a few seconds of runs (its connection aged out a few
  // times already, and the gateway's sessions were retired and replaced).
  absl::SleepFor(absl::Seconds(3));
  ASSERT_GT(count(), 4u);

  ASSERT_TRUE(topology_->AddOrchestrator("127.0.0.3").ok());
  const absl::Time added = absl::Now();
  dns_->Set(kName, {"127.0.0.2", "127.0.0.3"});
  const int64_t queries_at_add = dns_->Queries(kName);

  // Until a run started after the addition is owned by the new replica.
  absl::Time first_on_new = absl::InfiniteFuture();
  size_t checked = 0;
  const absl::Time deadline = added + absl::Seconds(20);
  while (first_on_new == absl::InfiniteFuture() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    std::vector<Outcome> fresh;
    {
      absl::MutexLock lock(&mu);
      fresh.assign(outcomes.begin() + static_cast<long>(checked),
                   outcomes.end());
      checked = outcomes.size();
    }
    for (const Outcome& o : fresh) {
      if (o.started > added &&
          RunOwner(*topology_, o.run_id) == "orchestrator#2") {
        first_on_new = std::min(first_on_new, o.started);
      }
    }
  }
  ASSERT_NE(first_on_new, absl::InfiniteFuture())
      << "no run reached the added replica within 20 s";
  // Both replicas serve for a while.
  absl::SleepFor(absl::Seconds(3));
  stop = true;
  for (auto& t : clients) t.join();

  std::map<std::string, int> before, after;
  int problems = 0;
  for (const Outcome& o : outcomes) {
    if (!o.problem.empty()) {
      ADD_FAILURE() << "run " << o.run_id << ": " << o.problem;
      if (++problems > 5) break;
      continue;
    }
    const std::string owner = RunOwner(*topology_, o.run_id);
    if (o.started < added) {
      ++before[owner];
    } else if (o.started > first_on_new) {
      ++after[owner];
    }
  }
  std::cout << "[scale_out] " << outcomes.size() << " runs; before the "
            << "addition: orchestrator " << before["orchestrator"]
            << "; first run on the added replica "
            << absl::ToDoubleMilliseconds(first_on_new - added)
            << " ms after it; after that: orchestrator "
            << after["orchestrator"] << ", orchestrator#2 "
            << after["orchestrator#2"] << "; DNS lookups of the name "
            << queries_at_add << " then " << dns_->Queries(kName) << std::endl;
  EXPECT_EQ(problems, 0);
  EXPECT_EQ(before.size(), 1u) << "before: only the first replica";
  EXPECT_GT(before["orchestrator"], 0);
  EXPECT_GT(after["orchestrator"], 0);
  EXPECT_GT(after["orchestrator#2"], 0);
  EXPECT_GT(dns_->Queries(kName), queries_at_add)
      << "the gateway never resolved the name again";
}

}  // namespace
}  // namespace agentstream::testing
