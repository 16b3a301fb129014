// The orchestrator's AnalyzeSession client (orchestrator/specialist_session.h)
// over real gRPC on loopback: against a fake specialist that serves
// sessions (fake_session_specialist.h), and one that does not
// (grpc_fake_specialist.h: the fallback to its own calls).
#include "orchestrator/specialist_session.h"

#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "orchestrator/grpc_specialist_client.h"
#include "tests/unit/orchestrator/fake_session_specialist.h"
#include "tests/unit/orchestrator/grpc_fake_specialist.h"

namespace agentstream::orchestrator {
namespace {

using agentstream::v1::AnalyzeRequest;
using agentstream::v1::Update;

constexpr absl::Duration kWait = absl::Seconds(20);

// Records what an analysis hears, and whether it heard it in the right way.
class Recorder final : public AnalyzeObserver {
 public:
  void OnUpdate(Update update) override {
    absl::MutexLock lock(&mu_);
    if (done_ > 0) after_done_ = true;
    updates_.push_back(std::move(update));
  }
  void OnDone(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ++done_;
    status_ = status;
  }
  bool WaitDone(absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_ > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  bool WaitUpdates(size_t n, absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return updates_.size() >= n || done_ > 0;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout) &&
           updates_.size() >= n;
  }
  int done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  absl::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  std::vector<Update> updates() {
    absl::MutexLock lock(&mu_);
    return updates_;
  }
  bool after_done() {
    absl::MutexLock lock(&mu_);
    return after_done_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Update> updates_ ABSL_GUARDED_BY(mu_);
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool after_done_ ABSL_GUARDED_BY(mu_) = false;
};

AnalyzeRequest Request(int i, std::string task = "analyse") {
  AnalyzeRequest r;
  r.set_request_id(absl::StrCat("req-", i));
  r.set_question("q");
  r.set_task(std::move(task));
  return r;
}

// Progress 1..n, in order.
void ExpectProgressInOrder(const std::vector<Update>& updates, int n) {
  ASSERT_EQ(updates.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(updates[i].progress().progress(), static_cast<uint32_t>(i + 1));
  }
}

class SpecialistSessionTest : public ::testing::Test {
 protected:
  void Start(int updates, absl::Duration interval, size_t padding = 0) {
    fake_ = StartFakeSessionServer(
        std::make_unique<FakeSessionSpecialist>(updates, interval, padding));
    GrpcSpecialistClientOptions options;
    options.sessions = true;
    options.clock = &clock_;
    client_ = std::make_unique<GrpcSpecialistClient>(fake_.address(), options);
  }
  void TearDown() override {
    client_.reset();
    if (fake_.server != nullptr) {
      fake_.server->Shutdown(absl::ToChronoTime(absl::Now()));
    }
  }
  std::shared_ptr<Recorder> Analyze(
      const AnalyzeRequest& request,
      std::unique_ptr<AnalyzeCall>* call = nullptr) {
    auto recorder = std::make_shared<Recorder>();
    std::unique_ptr<AnalyzeCall> c = client_->Analyze(request, recorder);
    EXPECT_NE(c, nullptr);
    if (call != nullptr) *call = std::move(c);
    return recorder;
  }
  FakeSessionSpecialist* fake() { return fake_.service.get(); }

  FakeClock clock_;
  FakeSessionServer fake_;
  std::unique_ptr<GrpcSpecialistClient> client_;
};

TEST_F(SpecialistSessionTest, ManyStreamsGetTheirUpdatesInOrderOverFewCalls) {
  Start(/*updates=*/9, absl::Milliseconds(1));
  std::vector<std::shared_ptr<Recorder>> analyses;
  for (int i = 0; i < 40; ++i) analyses.push_back(Analyze(Request(i)));
  for (auto& a : analyses) {
    ASSERT_TRUE(a->WaitDone());
    EXPECT_TRUE(a->status().ok()) << a->status();
    ExpectProgressInOrder(a->updates(), 9);
  }
  // Every stream went over a few calls: the kSessions slots took 10 each
  // in turn, each call kMinRotationStreams of them (few were open: the
  // rotation's count is its least); none fell back.
  constexpr int kSessions = static_cast<int>(SpecialistSessions::kSessions);
  constexpr int kPerCall =
      static_cast<int>(SpecialistSessions::kMinRotationStreams);
  constexpr int kCalls =
      kSessions * ((40 / kSessions + kPerCall - 1) / kPerCall);
  EXPECT_EQ(fake()->calls_started(), kCalls);
  EXPECT_EQ(fake()->opens(), 40);
  EXPECT_EQ(client_->session_calls_started(), static_cast<uint64_t>(kCalls));
  EXPECT_TRUE(client_->uses_sessions());
  for (auto& a : analyses) {
    EXPECT_EQ(a->done(), 1);
    EXPECT_FALSE(a->after_done());
  }
}

// Opens from many threads at once reach each call in the order of their
// stream ids (the specialist ends a session whose ids do not increase).
TEST_F(SpecialistSessionTest, OpensFromManyThreadsKeepTheirCallsOrder) {
  Start(/*updates=*/2, absl::ZeroDuration());
  constexpr int kThreads = 4, kEach = 150;
  std::vector<std::vector<std::shared_ptr<Recorder>>> analyses(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        analyses[t].push_back(Analyze(Request(t * kEach + i)));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& each : analyses) {
    for (auto& a : each) {
      ASSERT_TRUE(a->WaitDone());
      EXPECT_TRUE(a->status().ok()) << a->status();
    }
  }
  EXPECT_EQ(fake()->opens(), kThreads * kEach);
}

TEST_F(SpecialistSessionTest, EachStreamEndsWithItsOwnStatus) {
  Start(/*updates=*/4, absl::Milliseconds(1));
  auto refused = Analyze(Request(1, "refuse"));
  auto fine = Analyze(Request(2));
  auto bad_update = Analyze(Request(3, "garbage-update"));
  ASSERT_TRUE(refused->WaitDone());
  EXPECT_EQ(refused->status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(refused->status().message(), "no such analysis");
  EXPECT_TRUE(refused->updates().empty());
  // An update that is not one fails its analysis only (and the specialist
  // is told to stop it).
  ASSERT_TRUE(bad_update->WaitDone());
  EXPECT_EQ(bad_update->status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(bad_update->status().message(),
            "the specialist sent a malformed update");
  ASSERT_TRUE(fine->WaitDone());
  EXPECT_TRUE(fine->status().ok()) << fine->status();
  ExpectProgressInOrder(fine->updates(), 4);
  EXPECT_TRUE(fake()->WaitFor([](auto* f) { return f->closes() == 1; }, kWait));
  // The session went on: a later analysis works (on every slot).
  for (int i = 0; i < 4; ++i) {
    auto later = Analyze(Request(10 + i));
    ASSERT_TRUE(later->WaitDone());
    EXPECT_TRUE(later->status().ok()) << later->status();
  }
  EXPECT_EQ(refused->done() + fine->done() + bad_update->done(), 3);
}

TEST_F(SpecialistSessionTest, AMalformedMessageEndsItsSessionsStreams) {
  Start(/*updates=*/-1, absl::Milliseconds(2));
  // Streams 1..4 go on the four calls in turn; 5 shares the first's.
  std::vector<std::shared_ptr<Recorder>> analyses;
  for (int i = 0; i < 4; ++i) analyses.push_back(Analyze(Request(i)));
  for (auto& a : analyses) ASSERT_TRUE(a->WaitUpdates(2));
  auto garbage = Analyze(Request(9, "garbage-session"));
  ASSERT_TRUE(garbage->WaitDone());
  EXPECT_EQ(garbage->status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(garbage->status().message(),
            "the specialist sent a malformed update");
  ASSERT_TRUE(analyses[0]->WaitDone());
  EXPECT_EQ(analyses[0]->status().code(), absl::StatusCode::kInternal);
  // The other sessions' streams go on.
  for (int i = 1; i < 4; ++i) {
    const size_t had = analyses[i]->updates().size();
    ASSERT_TRUE(analyses[i]->WaitUpdates(had + 2));
    EXPECT_EQ(analyses[i]->done(), 0);
  }
}

TEST_F(SpecialistSessionTest, CancelEndsTheStreamOnceAndClosesIt) {
  Start(/*updates=*/-1, absl::Milliseconds(2));
  std::unique_ptr<AnalyzeCall> call, other_call;
  auto cancelled = Analyze(Request(1), &call);
  auto other = Analyze(Request(2), &other_call);
  ASSERT_TRUE(cancelled->WaitUpdates(4));
  call->Cancel();
  ASSERT_TRUE(cancelled->WaitDone());
  EXPECT_EQ(cancelled->status().code(), absl::StatusCode::kCancelled);
  call->Cancel();  // Harmless after the end.
  EXPECT_TRUE(fake()->WaitFor([](auto* f) { return f->closes() == 1; }, kWait));
  // The other stream flows on.
  const size_t had = other->updates().size();
  ASSERT_TRUE(other->WaitUpdates(had + 4));
  other_call->Cancel();
  ASSERT_TRUE(other->WaitDone());
  EXPECT_EQ(other->status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(fake()->WaitFor([](auto* f) { return f->closes() == 2; }, kWait));
  EXPECT_EQ(cancelled->done(), 1);
  EXPECT_EQ(other->done(), 1);
  EXPECT_FALSE(cancelled->after_done());
}

TEST_F(SpecialistSessionTest, CancelRacingTheEndStillEndsOnce) {
  Start(/*updates=*/2, absl::ZeroDuration());
  std::vector<std::shared_ptr<Recorder>> analyses;
  std::vector<std::unique_ptr<AnalyzeCall>> calls(50);
  for (int i = 0; i < 50; ++i)
    analyses.push_back(Analyze(Request(i), &calls[i]));
  for (auto& c : calls) c->Cancel();
  for (auto& a : analyses) {
    ASSERT_TRUE(a->WaitDone());
    EXPECT_TRUE(a->status().ok() ||
                a->status().code() == absl::StatusCode::kCancelled)
        << a->status();
  }
  // Whatever came late is not told twice.
  absl::SleepFor(absl::Milliseconds(50));
  for (auto& a : analyses) {
    EXPECT_EQ(a->done(), 1);
    EXPECT_FALSE(a->after_done());
  }
}

TEST_F(SpecialistSessionTest, ALostSessionEndsEveryStreamOnce) {
  Start(/*updates=*/-1, absl::Milliseconds(2));
  std::vector<std::shared_ptr<Recorder>> analyses;
  for (int i = 0; i < 10; ++i) analyses.push_back(Analyze(Request(i)));
  for (auto& a : analyses) ASSERT_TRUE(a->WaitUpdates(2));
  fake_.server->Shutdown(absl::ToChronoTime(absl::Now()));
  for (auto& a : analyses) {
    ASSERT_TRUE(a->WaitDone());
    EXPECT_FALSE(a->status().ok());
    EXPECT_NE(a->status().code(), absl::StatusCode::kInternal) << a->status();
  }
  client_.reset();
  for (auto& a : analyses) {
    EXPECT_EQ(a->done(), 1);
    EXPECT_FALSE(a->after_done());
  }
}

TEST_F(SpecialistSessionTest, CreditLetsAStreamPassItsWindow) {
  // Some 2.5 windows of updates: without credit the fake stops at one.
  const int updates =
      static_cast<int>(5 * SpecialistSessions::kWindowBytes / 2 / 1000);
  Start(updates, absl::ZeroDuration(), /*padding=*/1000);
  auto a = Analyze(Request(1));
  ASSERT_TRUE(a->WaitDone(absl::Seconds(60)));
  EXPECT_TRUE(a->status().ok()) << a->status();
  ExpectProgressInOrder(a->updates(), updates);
  EXPECT_GE(fake()->credited_bytes(), SpecialistSessions::kWindowBytes);
}

TEST_F(SpecialistSessionTest, AfterTheRotationAgeNewStreamsGoOnNewCalls) {
  Start(/*updates=*/3, absl::Milliseconds(1));
  constexpr int kSessions = static_cast<int>(SpecialistSessions::kSessions);
  auto run_some = [&](int first) {
    std::vector<std::shared_ptr<Recorder>> analyses;
    for (int i = 0; i < 2 * kSessions; ++i) {
      analyses.push_back(Analyze(Request(first + i)));
    }
    for (auto& a : analyses) {
      ASSERT_TRUE(a->WaitDone());
      EXPECT_TRUE(a->status().ok()) << a->status();
    }
  };
  ASSERT_NO_FATAL_FAILURE(run_some(0));
  EXPECT_EQ(fake()->calls_started(), kSessions);
  clock_.Advance(SpecialistSessions::kRotationAge);
  ASSERT_NO_FATAL_FAILURE(run_some(100));
  EXPECT_EQ(fake()->calls_started(), 2 * kSessions);
  // The old calls drained (their streams ended) and were let go; the new
  // ones wait for streams.
  EXPECT_TRUE(fake()->WaitFor(
      [](auto* f) { return f->calls_active() == kSessions; }, kWait));
}

// A burst over three replicas (one round_robin channel to three fake
// specialists) spreads over them as calls of their own would: the calls
// rotate by count as well as by age, so that 4 sessions over 3 replicas
// do not put half the streams on one of them.
TEST(SpecialistSessionSpreadTest, ABurstSpreadsOverTheReplicas) {
  std::vector<FakeSessionServer> fakes;
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) {
    fakes.push_back(
        StartFakeSessionServer(std::make_unique<FakeSessionSpecialist>(
            /*updates=*/3, absl::Milliseconds(100))));
    addresses.push_back(fakes.back().address());
  }
  FakeClock clock;
  GrpcSpecialistClientOptions options;
  options.sessions = true;
  options.clock = &clock;
  auto client = std::make_unique<GrpcSpecialistClient>(
      absl::StrCat("ipv4:", absl::StrJoin(addresses, ",")), options);
  auto analyze = [&](int i) {
    auto recorder = std::make_shared<Recorder>();
    std::unique_ptr<AnalyzeCall> call = client->Analyze(Request(i), recorder);
    EXPECT_NE(call, nullptr);
    return recorder;
  };
  // Connected to all three first (round_robin picks among the ready), as a
  // running orchestrator is.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(analyze(i)->WaitDone());
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<int> before;
  for (auto& f : fakes) before.push_back(f.service->opens());

  constexpr int kBurst = 30;
  std::vector<std::shared_ptr<Recorder>> analyses;
  for (int i = 0; i < kBurst; ++i) analyses.push_back(analyze(100 + i));
  for (auto& a : analyses) {
    ASSERT_TRUE(a->WaitDone());
    EXPECT_TRUE(a->status().ok()) << a->status();
  }
  std::vector<int> got;
  for (size_t i = 0; i < fakes.size(); ++i) {
    got.push_back(fakes[i].service->opens() - before[i]);
  }
  const std::string spread = absl::StrJoin(got, "/");
  std::cout << "[spread] " << kBurst << " streams over 3 replicas: " << spread
            << "\n";
  EXPECT_EQ(got[0] + got[1] + got[2], kBurst) << spread;
  for (int n : got) {
    // Calls of their own: 10 each. Four sessions taking streams until the
    // age alone rotated them: 15/8/7 (two sessions on one replica).
    EXPECT_GE(n, 6) << spread;
    EXPECT_LE(n, 13) << spread;
  }
  client.reset();
  for (auto& f : fakes) f.server->Shutdown(absl::ToChronoTime(absl::Now()));
}

// A specialist without AnalyzeSession: every analysis is started again as
// its own AnalyzeBatched call, with nothing lost or told twice, and later
// ones go there at once.
TEST(SpecialistSessionFallbackTest, UnimplementedFallsBackToItsOwnCalls) {
  FakeServer fake =
      StartFakeService(std::make_unique<BatchedFakeSpecialistService>(
          "RiskAnalyst", std::vector<std::string>{"risk"}, 7,
          absl::Milliseconds(1),
          /*batched=*/true));
  auto* service =
      static_cast<BatchedFakeSpecialistService*>(fake.service.get());
  GrpcSpecialistClientOptions options;
  options.sessions = true;
  auto client = std::make_unique<GrpcSpecialistClient>(fake.address(), options);
  std::vector<std::shared_ptr<Recorder>> analyses;
  std::vector<std::unique_ptr<AnalyzeCall>> calls;
  for (int i = 0; i < 8; ++i) {
    analyses.push_back(std::make_shared<Recorder>());
    calls.push_back(client->Analyze(Request(i), analyses.back()));
  }
  auto expect_whole = [](Recorder& a) {
    ASSERT_TRUE(a.WaitDone());
    EXPECT_TRUE(a.status().ok()) << a.status();
    const std::vector<Update> updates = a.updates();
    ASSERT_EQ(updates.size(), 8u);  // 7 progress and a partial result.
    for (int i = 0; i < 7; ++i) EXPECT_TRUE(updates[i].has_progress());
    EXPECT_TRUE(updates[7].has_partial_result());
  };
  for (auto& a : analyses) ASSERT_NO_FATAL_FAILURE(expect_whole(*a));
  EXPECT_FALSE(client->uses_sessions());
  EXPECT_EQ(service->batched_calls(), 8);
  const uint64_t sessions = client->session_calls_started();
  EXPECT_GE(sessions, 1u);
  auto later = std::make_shared<Recorder>();
  client->Analyze(Request(99), later);
  ASSERT_NO_FATAL_FAILURE(expect_whole(*later));
  EXPECT_EQ(client->session_calls_started(), sessions);
  EXPECT_EQ(service->batched_calls(), 9);
  for (auto& a : analyses) EXPECT_EQ(a->done(), 1);
  client.reset();
  fake.server->Shutdown(absl::ToChronoTime(absl::Now()));
}

}  // namespace
}  // namespace agentstream::orchestrator
