// What the tests with two orchestrator replicas and a real redis-server
// share (replicas_test.cc, replicas_store_test.cc): the fixture, Synthetic
// run requests, readers of Run/Attach streams, and clients that follow runs
// through the gateway across cuts. Header-only.
#ifndef AGENTSTREAM_TESTS_INTEGRATION_REPLICAS_FIXTURE_H_
#define AGENTSTREAM_TESTS_INTEGRATION_REPLICAS_FIXTURE_H_

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agentstream/v1/orchestrator.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/run_store_util.h"
#include "tests/integration/stream_test_util.h"
#include "tests/integration/topology_fixture.h"

namespace agentstream::testing::replicas {

using agentstream::v1::AttachRequest;
using agentstream::v1::Orchestrator;
using agentstream::v1::RunRequest;
using agentstream::v1::Update;

constexpr int kLeaseMs = 1000;

class ReplicasTest : public TopologyTest {
 protected:
  void SetUp() override {
    TopologyOptions options = SyntheticOnlyOptions();
    options.redis = true;
    options.orchestrator_replicas = 2;
    options.extra_orchestrator_args = {
        absl::StrCat("--run-lease-ms=", kLeaseMs)};
    // Sessions renewed often: the gateway's first few may all have gone to
    // the replica that was ready first, and streams (starts and resumes)
    // are to reach both.
    options.extra_gateway_args = {"--run-starts-per-second=2000",
                                  "--run-start-burst=2000",
                                  "--session-max-age-ms=300"};
    StartTopology(options);
  }

  std::unique_ptr<Orchestrator::Stub> Stub(int replica) {
    return Orchestrator::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", topology_->orchestrator_port(replica)),
        grpc::InsecureChannelCredentials()));
  }

  // The replica (its --replica-id, the process name) that owns run `id`,
  // as the store says.
  std::string OwnerOf(const std::string& id) {
    return RunOwner(*topology_, id);
  }

  double ReplicaMetric(int replica, const std::string& name) {
    return MetricOrFail(topology_->orchestrator_metrics_port(replica),
                        "agentstream_orchestrator_" + name);
  }
  double SumOverReplicas(const std::string& name) {
    double sum = 0;
    for (int i = 0; i < topology_->orchestrator_count(); ++i) {
      sum += ReplicaMetric(i, name);
    }
    return sum;
  }
};

inline RunRequest SyntheticRun(int count, int rate) {
  RunRequest request;
  request.set_message("synthetic load");
  request.add_specialists("Synthetic");
  google::protobuf::util::JsonStringToMessage(
      nlohmann::json({{"count", count}, {"size", 64}, {"rate", rate}}).dump(),
      request.mutable_options());
  return request;
}

struct Read {
  std::vector<Update> updates;
  grpc::Status status;
  std::string request_id;  // x-request-id, from the initial metadata.
};

// Reads a Run or Attach stream to its end (deadline 60 s) into `out`;
// `first` is notified once the first update (and the run's id) is in.
template <typename Start>
void ReadInto(Read* out, Start start, absl::Notification* first = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  auto reader = start(&context);
  Update update;
  while (reader->Read(&update)) {
    if (out->updates.empty()) {
      auto it = context.GetServerInitialMetadata().find("x-request-id");
      if (it != context.GetServerInitialMetadata().end()) {
        out->request_id = std::string(it->second.data(), it->second.size());
      }
    }
    out->updates.push_back(update);
    if (first != nullptr && !first->HasBeenNotified()) first->Notify();
  }
  out->status = reader->Finish();
  if (first != nullptr && !first->HasBeenNotified()) first->Notify();
}

template <typename Start>
Read ReadAll(Start start) {
  Read out;
  ReadInto(&out, start);
  return out;
}

inline std::string CheckDense(const Read& read) {
  for (size_t i = 0; i < read.updates.size(); ++i) {
    if (read.updates[i].seq() != i + 1) {
      return absl::StrCat("update ", i, " has seq ", read.updates[i].seq());
    }
  }
  if (read.updates.empty() || !read.updates.back().has_complete()) {
    return "does not end with complete";
  }
  return "";
}

// Follows a run through the gateway until `done`: resumes with
// Last-Event-ID after every cut, error or 503 (a replica gone, the store
// away), as an EventSource would, within `deadline`.
struct Followed {
  std::string run_id;
  std::vector<SseEvent> messages;
  std::vector<SseEvent> others;
  bool done = false;
  int reconnects = 0;
  int unavailable = 0;  // 503 answers to a reconnect.
  std::string error;
};

inline Followed FollowToEnd(int port, RawSseRequest first,
                            absl::Duration deadline) {
  Followed out;
  const absl::Time until = absl::Now() + deadline;
  std::string last_id;
  RawSseRequest request = std::move(first);
  while (absl::Now() < until) {
    request.timeout = until - absl::Now();
    RawSseResult r = RawSse(request);
    if (out.run_id.empty()) out.run_id = r.RunId();
    for (const SseEvent& e : r.events) {
      if (e.event == "message") {
        out.messages.push_back(e);
      } else {
        out.others.push_back(e);
      }
      if (e.event == "done") out.done = true;
    }
    if (!r.last_event_id.empty()) last_id = r.last_event_id;
    if (out.done || r.status == 204) {
      out.done = true;
      return out;
    }
    if (r.status == 503) ++out.unavailable;
    if (r.status != 200 && r.status != 503 && r.status != 0) {
      out.error = absl::StrCat("HTTP ", r.status, ": ", r.body.substr(0, 300));
      return out;
    }
    if (out.run_id.empty()) {
      out.error = "no run id: " + r.error;
      return out;
    }
    ++out.reconnects;
    absl::SleepFor(absl::Milliseconds(r.status == 503 ? 200 : 20));
    request = ResumeRequest(port, RunStreamPath(out.run_id),
                            last_id.empty() ? out.run_id + ":0" : last_id,
                            absl::Seconds(60));
  }
  out.error = "deadline";
  return out;
}

// "" when `r` got its whole run: done, seq 1..N once each, `complete` ok.
inline std::string CheckCompleted(const Followed& r) {
  if (!r.done) return "not done: " + r.error;
  if (std::string dense = CheckDenseRun(r.messages, r.run_id); !dense.empty()) {
    return dense;
  }
  if (r.messages.back().json.value("outcome", "") != "ok") {
    return "complete is not ok: " + r.messages.back().data;
  }
  return "";
}

// `n` clients, each starting a run of `options` through the gateway and
// following it to its end (FollowToEnd); started() counts those that have
// received `messages` updates (or given up). Joined on destruction.
class Clients final {
 public:
  Clients(int port, int n, const nlohmann::json& options,
          const std::string& prefix, int messages)
      : results_(n), ids_(n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, port, options, prefix, messages, i] {
        RawSseRequest first =
            NewRunRequest(port, SyntheticChatPath(options),
                          absl::StrCat(prefix, i), absl::Seconds(60));
        int seen = 0;
        first.on_event = [&](const SseEvent& e) {
          if (e.event == "connected") {
            absl::MutexLock lock(&mu_);
            ids_[i] = e.json.value("request_id", "");
          }
          if (e.event == "message" && ++seen == messages) ++started_;
          return RawSseAction{};
        };
        results_[i] = FollowToEnd(port, std::move(first), absl::Seconds(90));
        if (seen < messages) ++started_;
      });
    }
  }
  ~Clients() { Join(); }
  void Join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int started() const { return started_.load(); }
  // The runs' ids, as their `connected` said ("" before).
  std::vector<std::string> ids() {
    absl::MutexLock lock(&mu_);
    return ids_;
  }
  // After Join().
  const std::vector<Followed>& results() const { return results_; }

 private:
  std::vector<Followed> results_;
  absl::Mutex mu_;
  std::vector<std::string> ids_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> started_{0};
  std::vector<std::thread> threads_;
};

}  // namespace agentstream::testing::replicas

#endif  // AGENTSTREAM_TESTS_INTEGRATION_REPLICAS_FIXTURE_H_
