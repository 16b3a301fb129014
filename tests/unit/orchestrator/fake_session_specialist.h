// A fake specialist that serves Specialist.AnalyzeSession as the contract
// says (docs/CONTRACT.md, "Specialist sessions"), with the generated sync
// API, for the orchestrator's session client tests.
//
// Each stream: `accepted` with its request id, then `updates` progress
// updates (progress 1, 2, ...; -1: until closed) `interval` apart, two per
// batch, sent while what is in flight (not credited) is below the window;
// then `end` OK. A close ends the stream CANCELLED. The task picks other
// behaviours: "refuse" (an end NOT_FOUND alone), "garbage-update" (a batch
// whose update is not an Update), "garbage-session" (a message that is not
// a SessionMessage). Stream numbers that do not increase end the session
// INVALID_ARGUMENT.
#ifndef AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_FAKE_SESSION_SPECIALIST_H_
#define AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_FAKE_SESSION_SPECIALIST_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentstream/v1/specialist.grpc.pb.h"

namespace agentstream::orchestrator {

class FakeSessionSpecialist final
    : public agentstream::v1::Specialist::Service {
 public:
  FakeSessionSpecialist(int updates, absl::Duration interval,
                        size_t update_padding = 0)
      : updates_(updates), interval_(interval), padding_(update_padding) {}

  // Describes itself as RiskAnalyst (keyword "risk"), for the orchestrator.
  grpc::Status Describe(grpc::ServerContext*,
                        const agentstream::v1::DescribeRequest*,
                        agentstream::v1::SpecialistCard* card) override {
    card->set_name("RiskAnalyst");
    card->set_display_name("RiskAnalyst display");
    card->set_icon("#");
    card->add_keywords("risk");
    card->set_instance("fake@test");
    return grpc::Status::OK;
  }

  grpc::Status AnalyzeSession(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<agentstream::v1::SessionMessage,
                               agentstream::v1::AnalyzeSessionRequest>* rw)
      override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_started_;
      ++calls_active_;
    }
    Session session(context, rw);
    agentstream::v1::AnalyzeSessionRequest request;
    uint64_t last = 0;
    grpc::Status status = grpc::Status::OK;
    while (rw->Read(&request)) {
      if (request.has_open()) {
        const auto& open = request.open();
        if (open.stream() <= last) {
          status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "stream numbers must increase");
          break;
        }
        last = open.stream();
        {
          absl::MutexLock lock(&mu_);
          ++opens_;
        }
        auto s = std::make_shared<Stream>();
        s->id = open.stream();
        s->window = open.window_bytes() == 0 ? (uint64_t{1} << 20)
                                             : open.window_bytes();
        {
          absl::MutexLock lock(&session.mu);
          session.streams[s->id] = s;
        }
        session.threads.emplace_back([this, &session, s, req = open.request()] {
          Produce(session, *s, req);
        });
      } else if (request.has_credit()) {
        absl::MutexLock lock(&session.mu);
        auto it = session.streams.find(request.credit().stream());
        if (it != session.streams.end()) {
          it->second->outstanding -=
              std::min(it->second->outstanding, request.credit().bytes());
        }
        absl::MutexLock count(&mu_);
        credited_bytes_ += request.credit().bytes();
      } else if (request.has_close()) {
        absl::MutexLock lock(&session.mu);
        auto it = session.streams.find(request.close().stream());
        if (it != session.streams.end()) it->second->closed = true;
        absl::MutexLock count(&mu_);
        ++closes_;
      }
    }
    {
      absl::MutexLock lock(&session.mu);
      session.over = true;
    }
    for (std::thread& t : session.threads) t.join();
    absl::MutexLock lock(&mu_);
    --calls_active_;
    return status;
  }

  int calls_started() {
    absl::MutexLock lock(&mu_);
    return calls_started_;
  }
  int calls_active() {
    absl::MutexLock lock(&mu_);
    return calls_active_;
  }
  int opens() {
    absl::MutexLock lock(&mu_);
    return opens_;
  }
  int closes() {
    absl::MutexLock lock(&mu_);
    return closes_;
  }
  uint64_t credited_bytes() {
    absl::MutexLock lock(&mu_);
    return credited_bytes_;
  }
  // Waits until `pred(this)` holds, at most `timeout`.
  template <typename Pred>
  bool WaitFor(Pred pred, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!pred(this)) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }

 private:
  struct Stream {
    uint64_t id = 0;
    uint64_t window = 0;
    uint64_t outstanding = 0;  // Under Session::mu.
    bool closed = false;       // Under Session::mu.
  };
  struct Session {
    Session(grpc::ServerContext* c,
            grpc::ServerReaderWriter<agentstream::v1::SessionMessage,
                                     agentstream::v1::AnalyzeSessionRequest>* w)
        : context(c), rw(w) {}
    grpc::ServerContext* context;
    grpc::ServerReaderWriter<agentstream::v1::SessionMessage,
                             agentstream::v1::AnalyzeSessionRequest>* rw;
    absl::Mutex mu;
    std::map<uint64_t, std::shared_ptr<Stream>> streams ABSL_GUARDED_BY(mu);
    bool over ABSL_GUARDED_BY(mu) = false;
    absl::Mutex write_mu;              // One writer at a time.
    std::vector<std::thread> threads;  // The reader's only.
  };

  static bool Write(Session& session,
                    const agentstream::v1::SessionMessage& message) {
    absl::MutexLock lock(&session.write_mu);
    return session.rw->Write(message);
  }
  // Whether the stream is to stop (closed, or the session over).
  static bool Stopped(Session& session, Stream& s) {
    absl::MutexLock lock(&session.mu);
    return s.closed || session.over || session.context->IsCancelled();
  }

  void Produce(Session& session, Stream& s,
               const agentstream::v1::AnalyzeRequest& request) {
    agentstream::v1::SessionMessage m;
    agentstream::v1::SessionFrame* f = m.add_frames();
    f->set_stream(s.id);
    if (request.task() == "refuse") {
      f->mutable_end()->set_code(grpc::StatusCode::NOT_FOUND);
      f->mutable_end()->set_message("no such analysis");
      Write(session, m);
      return;
    }
    f->set_accepted(true);
    f->set_request_id(request.request_id());
    if (request.task() == "garbage-update") {
      // Field 4 (batch): an UpdateBatch whose update is not an Update.
      f->GetReflection()->MutableUnknownFields(f)->AddLengthDelimited(
          4, std::string("\x0a\x02\xff\xff", 4));
    } else if (request.task() == "garbage-session") {
      // Field 1 (a frame) that is not a SessionFrame.
      m.GetReflection()->MutableUnknownFields(&m)->AddLengthDelimited(
          1, std::string("\xff\xff", 2));
    }
    if (!Write(session, m)) return;
    for (int i = 1; updates_ < 0 || i <= updates_; i += 2) {
      const absl::Time until = absl::Now() + interval_;
      while (absl::Now() < until) {
        if (Stopped(session, s)) break;
        absl::SleepFor(absl::Milliseconds(1));
      }
      // Waits for credit while the window is full.
      while (true) {
        if (Stopped(session, s)) return End(session, s);
        absl::MutexLock lock(&session.mu);
        if (s.outstanding < s.window) break;
        session.mu.AwaitWithTimeout(absl::Condition(
                                        +[](Stream* st) {
                                          return st->outstanding < st->window ||
                                                 st->closed;
                                        },
                                        &s),
                                    absl::Milliseconds(5));
      }
      m.Clear();
      f = m.add_frames();
      f->set_stream(s.id);
      for (int j = i; j < i + 2 && (updates_ < 0 || j <= updates_); ++j) {
        agentstream::v1::Update* u = f->mutable_batch()->add_updates();
        u->set_instance("fake@test");
        u->mutable_progress()->set_progress(static_cast<uint32_t>(j));
        u->mutable_progress()->set_current_action(
            absl::StrCat("step ", j, std::string(padding_, '.')));
      }
      {
        absl::MutexLock lock(&session.mu);
        s.outstanding += f->batch().ByteSizeLong();
      }
      if (!Write(session, m)) return;
    }
    End(session, s);
  }
  // The last frame: OK, or CANCELLED after a close.
  static void End(Session& session, Stream& s) {
    agentstream::v1::SessionMessage m;
    agentstream::v1::SessionFrame* f = m.add_frames();
    f->set_stream(s.id);
    {
      absl::MutexLock lock(&session.mu);
      if (s.closed) {
        f->mutable_end()->set_code(grpc::StatusCode::CANCELLED);
        f->mutable_end()->set_message("closed");
      } else if (session.over) {
        return;  // Nobody to tell.
      } else {
        f->mutable_end();
      }
    }
    Write(session, m);
  }

  const int updates_;
  const absl::Duration interval_;
  const size_t padding_;
  absl::Mutex mu_;
  int calls_started_ ABSL_GUARDED_BY(mu_) = 0;
  int calls_active_ ABSL_GUARDED_BY(mu_) = 0;
  int opens_ ABSL_GUARDED_BY(mu_) = 0;
  int closes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t credited_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

struct FakeSessionServer {
  std::unique_ptr<FakeSessionSpecialist> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

inline FakeSessionServer StartFakeSessionServer(
    std::unique_ptr<FakeSessionSpecialist> service) {
  FakeSessionServer f;
  f.service = std::move(service);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &f.port);
  builder.RegisterService(f.service.get());
  f.server = builder.BuildAndStart();
  return f;
}

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_TESTS_UNIT_ORCHESTRATOR_FAKE_SESSION_SPECIALIST_H_
