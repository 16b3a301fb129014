// A fake agentstream.v1.Specialist gRPC server for the orchestrator's
// loopback tests (generated stubs, sync API), and small client helpers.
#ifndef AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_GRPC_FAKE_SPECIALIST_H_
#define AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_GRPC_FAKE_SPECIALIST_H_

#include <grpcpp/client_context.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/sync_stream.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/update_json.h"

namespace agentstream::orchestrator {

// A specialist that emits `updates` progress updates `interval` apart, then a
// partial result, and notices cancellation. It implements Analyze only (as a
// third-party specialist may): its AnalyzeBatched is gRPC's UNIMPLEMENTED.
class FakeSpecialistService : public agentstream::v1::Specialist::Service {
 public:
  FakeSpecialistService(std::string name, std::vector<std::string> keywords,
                        int updates, absl::Duration interval)
      : updates_(updates), interval_(interval) {
    card_.set_name(name);
    card_.set_display_name(name + " display");
    card_.set_icon("#");
    for (auto& k : keywords) card_.add_keywords(k);
    card_.set_instance(name + "@test");
  }

  grpc::Status Describe(grpc::ServerContext*,
                        const agentstream::v1::DescribeRequest*,
                        agentstream::v1::SpecialistCard* card) override {
    *card = card_;
    return grpc::Status::OK;
  }

  grpc::Status Analyze(
      grpc::ServerContext* context,
      const agentstream::v1::AnalyzeRequest* request,
      grpc::ServerWriter<agentstream::v1::Update>* writer) override {
    return Produce(context, request,
                   [writer](const agentstream::v1::Update& u, bool /*last*/) {
                     return writer->Write(u);
                   });
  }

  bool WaitCancelled(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto cancelled = [this]()
                         ABSL_SHARED_LOCKS_REQUIRED(mu_) { return cancelled_; };
    return mu_.AwaitWithTimeout(absl::Condition(&cancelled), timeout);
  }
  // Before the server takes calls: the instance named in card and updates.
  void set_instance(const std::string& instance) {
    card_.set_instance(instance);
  }
  // Before the server takes calls: emit `thinking` updates (never
  // coalesced, about 0.5 KiB each) instead of progress.
  void set_thinking(bool thinking) { thinking_ = thinking; }
  // Every Analyze fails with `code` before any update (OK: works).
  void set_fail_with(grpc::StatusCode code) {
    absl::MutexLock lock(&mu_);
    fail_with_ = code;
  }
  size_t request_count() {
    absl::MutexLock lock(&mu_);
    return requests_.size();
  }

 protected:
  // Analyze's work: records the request and hands each update to `write`
  // (`last` for the final one), which returns false when the stream broke.
  grpc::Status Produce(
      grpc::ServerContext* context,
      const agentstream::v1::AnalyzeRequest* request,
      const std::function<bool(const agentstream::v1::Update&, bool)>& write) {
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(*request);
      if (fail_with_ != grpc::StatusCode::OK) {
        return grpc::Status(fail_with_, "this replica fails");
      }
    }
    for (int i = 1; i <= updates_; ++i) {
      // Sleep in small steps so that cancellation is seen promptly.
      const absl::Time until = absl::Now() + interval_;
      while (absl::Now() < until) {
        if (context->IsCancelled()) return Cancelled();
        absl::SleepFor(absl::Milliseconds(2));
      }
      if (context->IsCancelled()) return Cancelled();
      agentstream::v1::Update u;
      u.set_instance(card_.instance());
      u.set_emitted_at(absl::ToUnixNanos(absl::Now()));
      if (thinking_) {
        u.mutable_thinking()->set_thought(
            absl::StrCat("thought ", i, " ", std::string(512, '.')));
      } else {
        u.mutable_progress()->set_progress(
            static_cast<uint32_t>(i * 100 / updates_));
        u.mutable_progress()->set_current_action(absl::StrCat("step ", i));
      }
      if (!write(u, false)) return Cancelled();
    }
    agentstream::v1::Update partial;
    *partial.mutable_partial_result()->mutable_result() =
        JsonToStruct({{"risk_score", 4.5}, {"confidence", 0.7}});
    write(partial, true);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Cancelled() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }

  agentstream::v1::SpecialistCard card_;
  const int updates_;
  const absl::Duration interval_;
  bool thinking_ = false;
  absl::Mutex mu_;
  std::vector<agentstream::v1::AnalyzeRequest> requests_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::StatusCode fail_with_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
};

// The same specialist with AnalyzeBatched too (updates two per message), or,
// with `batched` false, an AnalyzeBatched that answers UNIMPLEMENTED itself;
// counts its AnalyzeBatched calls.
class BatchedFakeSpecialistService final : public FakeSpecialistService {
 public:
  BatchedFakeSpecialistService(std::string name,
                               std::vector<std::string> keywords, int updates,
                               absl::Duration interval, bool batched)
      : FakeSpecialistService(std::move(name), std::move(keywords), updates,
                              interval),
        batched_(batched) {}

  grpc::Status AnalyzeBatched(
      grpc::ServerContext* context,
      const agentstream::v1::AnalyzeRequest* request,
      grpc::ServerWriter<agentstream::v1::UpdateBatch>* writer) override {
    {
      absl::MutexLock lock(&batched_mu_);
      ++batched_calls_;
    }
    if (!batched_) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not here");
    }
    agentstream::v1::UpdateBatch batch;
    return Produce(context, request,
                   [&](const agentstream::v1::Update& u, bool last) {
                     *batch.add_updates() = u;
                     if (batch.updates_size() < 2 && !last) return true;
                     const bool ok = writer->Write(batch);
                     batch.Clear();
                     return ok;
                   });
  }
  int batched_calls() {
    absl::MutexLock lock(&batched_mu_);
    return batched_calls_;
  }

 private:
  const bool batched_;
  absl::Mutex batched_mu_;
  int batched_calls_ ABSL_GUARDED_BY(batched_mu_) = 0;
};

struct FakeServer {
  std::unique_ptr<FakeSpecialistService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

inline FakeServer StartFakeService(
    std::unique_ptr<FakeSpecialistService> service, int port = 0) {
  FakeServer f;
  f.service = std::move(service);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port),
                           grpc::InsecureServerCredentials(), &f.port);
  builder.RegisterService(f.service.get());
  f.server = builder.BuildAndStart();
  return f;
}

inline FakeServer StartFake(std::string name, std::vector<std::string> keywords,
                            int updates, absl::Duration interval,
                            int port = 0) {
  return StartFakeService(
      std::make_unique<FakeSpecialistService>(
          std::move(name), std::move(keywords), updates, interval),
      port);
}

inline std::vector<agentstream::v1::Update> ReadAll(
    grpc::ClientReaderInterface<agentstream::v1::Update>* reader) {
  std::vector<agentstream::v1::Update> out;
  agentstream::v1::Update u;
  while (reader->Read(&u)) out.push_back(u);
  return out;
}

inline std::unique_ptr<grpc::ClientContext> ContextWithDeadline() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return context;
}

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_GRPC_FAKE_SPECIALIST_H_
