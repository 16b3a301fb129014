// The SDK's stream machinery (issue 11): the per-call queue and its batching,
// the worker pool's bounds, the timer thread, and, through the in-process
// gRPC host, back-pressure on blocking and asynchronous analyses, cancel,
// RESOURCE_EXHAUSTED past the pool, and idle asynchronous runs holding no
// thread.
#include <dirent.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agentstream/v1/specialist.grpc.pb.h"
#include "common/clock.h"
#include "common/update_json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "specialists/sdk/async_specialist.h"
#include "specialists/sdk/specialist_server.h"
#include "specialists/sdk/stream_queue.h"
#include "specialists/sdk/timer_thread.h"
#include "specialists/sdk/worker_pool.h"
#include "specialists/synthetic/synthetic.h"
#include "tests/integration/specialist_calls.h"
#include "tests/testing/status_matchers.h"

namespace agentstream::specialists {
namespace {

using ::agentstream::testing::IsOk;
using ::agentstream::testing::StreamCall;
using ::agentstream::testing::StreamForm;
using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;
using ::testing::HasSubstr;

Update Numbered(int i, size_t payload = 10) {
  Update u;
  u.set_request_id("r");
  u.mutable_thinking()->set_thought(std::string(payload, 'x'));
  u.set_seq(static_cast<uint64_t>(i));
  return u;
}

TEST(StreamQueueTest, BatchesWhatWasEmittedWhileAWriteWasInFlight) {
  StreamQueue queue(StreamLimits{1 << 20, 100});
  UpdateBatch batch;
  EXPECT_FALSE(queue.TakeNext(&batch));  // Nothing queued.
  queue.Push(Numbered(1));
  ASSERT_TRUE(queue.TakeNext(&batch));  // At once: a batch of one.
  ASSERT_EQ(batch.updates_size(), 1);
  EXPECT_TRUE(queue.writing());
  for (int i = 2; i <= 5; ++i) queue.Push(Numbered(i));
  EXPECT_FALSE(queue.TakeNext(&batch));  // One write in flight at a time.
  EXPECT_EQ(queue.queued_updates(), 5);
  queue.WriteDone();
  EXPECT_EQ(queue.queued_updates(), 4);
  ASSERT_TRUE(queue.TakeNext(&batch));  // Everything since, in order.
  ASSERT_EQ(batch.updates_size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(batch.updates(i).seq(), i + 2u);
  queue.WriteDone();
  EXPECT_TRUE(queue.idle());
  EXPECT_FALSE(queue.TakeNext(&batch));
}

TEST(StreamQueueTest, SingleFramingTakesOneUpdatePerWriteInOrder) {
  StreamQueue queue(StreamLimits{1 << 20, 1000});
  for (int i = 1; i <= 300; ++i) queue.Push(Numbered(i));
  Update out;
  std::vector<uint64_t> seen;
  while (queue.TakeNext(&out)) {
    seen.push_back(out.seq());
    EXPECT_EQ(queue.in_flight_updates(), 1);
    // More arrive while writes go out (the vector is compacted meanwhile).
    if (seen.size() % 3 == 0 && seen.size() <= 300) {
      queue.Push(Numbered(static_cast<int>(300 + seen.size() / 3)));
    }
    queue.WriteDone();
  }
  ASSERT_EQ(seen.size(), 400u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
  EXPECT_TRUE(queue.idle());
}

TEST(StreamQueueTest, BoundedInUpdatesAndBytes) {
  StreamQueue by_count(StreamLimits{1 << 20, 3});
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(by_count.HasRoom());
    by_count.Push(Numbered(i));
  }
  EXPECT_FALSE(by_count.HasRoom());
  EXPECT_FALSE(by_count.Overflowing());
  for (int i = 4; i <= 6; ++i) by_count.Push(Numbered(i));
  EXPECT_TRUE(by_count.Overflowing());  // Twice the bound.
  UpdateBatch batch;
  ASSERT_TRUE(by_count.TakeNext(&batch));
  EXPECT_FALSE(by_count.HasRoom());  // The write in flight still counts.
  by_count.WriteDone();
  EXPECT_TRUE(by_count.HasRoom());

  StreamQueue by_bytes(StreamLimits{1000, 100});
  by_bytes.Push(Numbered(1, 600));
  EXPECT_TRUE(by_bytes.HasRoom());
  by_bytes.Push(Numbered(2, 600));
  EXPECT_FALSE(by_bytes.HasRoom());
  EXPECT_GE(by_bytes.queued_bytes(), 1200);
  // An update larger than the bound still goes when the queue is empty.
  StreamQueue oversized(StreamLimits{100, 100});
  EXPECT_TRUE(oversized.HasRoom());
  oversized.Push(Numbered(1, 5000));
  EXPECT_FALSE(oversized.HasRoom());
  ASSERT_TRUE(oversized.TakeNext(&batch));
  oversized.WriteDone();
  EXPECT_TRUE(oversized.HasRoom());
  // A batch holds at most max_bytes (or one larger update); the rest goes
  // in the next one, in order.
  StreamQueue capped(StreamLimits{1000, 100});
  capped.Push(Numbered(1, 10));
  ASSERT_TRUE(capped.TakeNext(&batch));
  for (int i = 2; i <= 7; ++i) capped.Push(Numbered(i, 300));
  capped.WriteDone();
  std::vector<int> sizes;
  std::vector<uint64_t> order;
  while (capped.TakeNext(&batch)) {
    sizes.push_back(batch.updates_size());
    for (const Update& u : batch.updates()) order.push_back(u.seq());
    capped.WriteDone();
  }
  EXPECT_EQ(sizes, (std::vector<int>{3, 3}));
  EXPECT_EQ(order, (std::vector<uint64_t>{2, 3, 4, 5, 6, 7}));
  // Clear() drops what waits, not the write in flight.
  by_bytes.Clear();
  EXPECT_TRUE(by_bytes.idle());
}

TEST(WorkerPoolTest, RunsAtMostMaxThreadsQueuesAtMostMaxWaitingRefusesMore) {
  WorkerPool pool(/*max_threads=*/2, /*max_waiting=*/1);
  absl::Notification release;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  auto task = [&] {
    started.fetch_add(1);
    release.WaitForNotification();
    finished.fetch_add(1);
  };
  EXPECT_TRUE(pool.TrySubmit(task));
  EXPECT_TRUE(pool.TrySubmit(task));
  EXPECT_TRUE(pool.TrySubmit(task));   // Waits.
  EXPECT_FALSE(pool.TrySubmit(task));  // Beyond the bound.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (started.load() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(started.load(), 2);
  EXPECT_EQ(pool.threads(), 2);
  EXPECT_EQ(pool.busy(), 2);
  EXPECT_EQ(pool.waiting(), 1);
  release.Notify();
  while (finished.load() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(finished.load(), 3);
  EXPECT_TRUE(pool.TrySubmit(task));  // Room again.
}

TEST(WorkerPoolTest, IdleThreadsEnd) {
  WorkerPool pool(4, 10, /*idle_timeout=*/absl::Milliseconds(20));
  std::atomic<int> ran{0};
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] { ran.fetch_add(1); }));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((ran.load() < 8 || pool.threads() > 0) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(ran.load(), 8);
  EXPECT_EQ(pool.threads(), 0);
  // And new work starts a thread again.
  ASSERT_TRUE(pool.TrySubmit([&] { ran.fetch_add(1); }));
  while (ran.load() < 9 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(ran.load(), 9);
}

TEST(TimerThreadTest, RunsDueTimersInOrderAndCancelledOnesNever) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  TimerThread timers(&clock);
  absl::Mutex mu;
  std::vector<int> fired;
  auto record = [&](int n) {
    return [&, n] {
      absl::MutexLock lock(&mu);
      fired.push_back(n);
    };
  };
  const absl::Time t0 = clock.Now();
  timers.Schedule(t0 + absl::Seconds(3), record(3));
  timers.Schedule(t0 + absl::Seconds(1), record(1));
  const TimerThread::Id cancelled =
      timers.Schedule(t0 + absl::Seconds(2), record(2));
  timers.Schedule(t0 + absl::Seconds(1), record(11));  // Tie: after 1.
  timers.Schedule(t0 + absl::Seconds(60), record(60));
  EXPECT_TRUE(timers.Cancel(cancelled));
  EXPECT_FALSE(timers.Cancel(cancelled));
  absl::SleepFor(absl::Milliseconds(20));
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(fired.empty());  // Nothing due on the fake clock.
  }
  clock.Advance(absl::Seconds(5));
  timers.Wake();
  auto three = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return fired.size() >= 3;
  };
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(10)));
    EXPECT_EQ(fired, (std::vector<int>{1, 11, 3}));
  }
  EXPECT_EQ(timers.pending(), 1u);  // The one a minute away.
}

// Emits as fast as its sink takes updates, `count` in all (blocking form).
class Flood final : public Specialist {
 public:
  explicit Flood(int64_t count) : count_(count) {}
  SpecialistCard Card() const override {
    SpecialistCard card;
    card.set_name("Flood");
    return card;
  }
  absl::Status Analyze(const AnalyzeRequest&, UpdateSink& sink,
                       const CancelToken& cancel) override {
    for (int64_t i = 0; i < count_; ++i) {
      if (cancel.cancelled()) return absl::CancelledError();
      if (!sink.Thinking(std::string(200, 'x'))) return absl::CancelledError();
      emitted_.fetch_add(1);
    }
    return absl::OkStatus();
  }
  std::atomic<int64_t> emitted_{0};

 private:
  const int64_t count_;
};

struct Hosted {
  std::unique_ptr<SpecialistServer> server;
  std::unique_ptr<agentstream::v1::Specialist::Stub> stub;
};

Hosted Host(std::unique_ptr<Specialist> specialist, ServerOptions options) {
  options.port = 0;
  auto server = SpecialistServer::Start(std::move(specialist), options);
  EXPECT_THAT(server, IsOk());
  Hosted h;
  h.server = *std::move(server);
  h.stub = agentstream::v1::Specialist::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", h.server->port()),
                          grpc::InsecureChannelCredentials()));
  return h;
}

AnalyzeRequest Request(const nlohmann::json& options = nullptr) {
  AnalyzeRequest r;
  r.set_task("t");
  if (options.is_object()) *r.mutable_options() = JsonToStruct(options);
  return r;
}

// Waits (bounded) until the server's counters satisfy `done`.
template <typename F>
bool WaitFor(F done, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return done();
}

// A never-reading client holds a blocking producer back (it waits in the
// sink) instead of letting the queue grow; the client's cancel releases it
// within 100 ms.
TEST(SdkBackPressureTest, BlockingAnalysisWaitsForANeverReadingClient) {
  auto flood = std::make_unique<Flood>(1'000'000);
  Flood* f = flood.get();
  ServerOptions options;
  options.limits.stream = StreamLimits{64 * 1024, 256};
  Hosted h = Host(std::move(flood), options);
  for (StreamForm form : {StreamForm::kSingle, StreamForm::kBatched}) {
    SCOPED_TRACE(form == StreamForm::kSingle ? "Analyze" : "AnalyzeBatched");
    const int64_t cancelled_before =
        h.server->metrics().completed(AnalysisOutcome::kCancelled);
    f->emitted_.store(0);
    StreamCall call(h.stub.get(), Request(), {form, /*read=*/false});
    call.Start();
    ASSERT_TRUE(WaitFor([&] { return f->emitted_.load() > 0; }));
    // Held back: what it emitted stops growing far short of the count
    // (the queue plus gRPC's flow-control windows).
    int64_t last = -1;
    ASSERT_TRUE(WaitFor(
        [&] {
          absl::SleepFor(absl::Milliseconds(100));
          const int64_t now = f->emitted_.load();
          const bool still = now == last;
          last = now;
          return still;
        },
        absl::Seconds(20)));
    EXPECT_LT(last, 100'000);
    EXPECT_EQ(h.server->metrics().active(), 1);
    const absl::Time cancelled_at = absl::Now();
    call.Cancel();
    ASSERT_TRUE(WaitFor([&] {
      return h.server->metrics().completed(AnalysisOutcome::kCancelled) >
             cancelled_before;
    }));
    EXPECT_LT(absl::Now() - cancelled_at, absl::Milliseconds(100));
    EXPECT_TRUE(call.WaitDone(absl::Seconds(30)));
    EXPECT_EQ(call.status().error_code(), grpc::StatusCode::CANCELLED);
  }
}

// The same for an asynchronous analysis: Synthetic unpaced is not stepped
// while the queue is full, and ends at once when cancelled.
TEST(SdkBackPressureTest, AsyncAnalysisIsNotSteppedWhileTheQueueIsFull) {
  ServerOptions options;
  options.limits.stream = StreamLimits{64 * 1024, 256};
  Hosted h = Host(std::make_unique<Synthetic>(SyntheticParams{}), options);
  StreamCall call(h.stub.get(),
                  Request({{"count", 5'000'000}, {"size", 200}, {"rate", 0}}),
                  {StreamForm::kBatched, /*read=*/false});
  call.Start();
  ASSERT_TRUE(WaitFor([&] { return h.server->metrics().active() == 1; }));
  absl::SleepFor(absl::Milliseconds(500));
  // Still running (5M updates would have taken well under this unbounded,
  // and gigabytes), and little of it went to gRPC.
  EXPECT_EQ(h.server->metrics().active(), 1);
  EXPECT_LT(h.server->metrics().updates_sent(), 100'000);
  const absl::Time cancelled_at = absl::Now();
  call.Cancel();
  ASSERT_TRUE(WaitFor([&] {
    return h.server->metrics().completed(AnalysisOutcome::kCancelled) == 1;
  }));
  EXPECT_LT(absl::Now() - cancelled_at, absl::Milliseconds(100));
  EXPECT_LT(h.server->metrics().last_cancel_stop_ms(), 100);
}

// Blocks until cancelled (a long blocking analysis).
class Sleeper final : public Specialist {
 public:
  SpecialistCard Card() const override {
    SpecialistCard card;
    card.set_name("Sleeper");
    return card;
  }
  absl::Status Analyze(const AnalyzeRequest&, UpdateSink& sink,
                       const CancelToken& cancel) override {
    running_.fetch_add(1);
    sink.Progress(1, "sleeping");
    while (!cancel.WaitFor(absl::Hours(1))) {
    }
    running_.fetch_sub(1);
    return absl::CancelledError();
  }
  std::atomic<int> running_{0};
};

TEST(SdkWorkerPoolTest, PastThePoolAndItsQueueCallsGetResourceExhausted) {
  auto sleeper = std::make_unique<Sleeper>();
  Sleeper* s = sleeper.get();
  ServerOptions options;
  options.limits.worker_threads = 2;
  options.limits.max_waiting_analyses = 1;
  Hosted h = Host(std::move(sleeper), options);
  std::vector<std::unique_ptr<StreamCall>> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back(std::make_unique<StreamCall>(
        h.stub.get(), Request(), StreamCall::Options{StreamForm::kBatched}));
    calls.back()->Start();
  }
  ASSERT_TRUE(WaitFor([&] { return s->running_.load() == 2; }));
  ASSERT_TRUE(WaitFor([&] { return h.server->metrics().active() == 3; }));
  StreamCall refused(h.stub.get(), Request(), {StreamForm::kSingle});
  refused.Start();
  ASSERT_TRUE(refused.WaitDone(absl::Seconds(30)));
  EXPECT_EQ(refused.status().error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.status().error_message(), HasSubstr("busy"));
  EXPECT_EQ(s->running_.load(), 2);
  // The waiting one never ran: cancelled while queued, it ends without
  // running once a thread frees up.
  calls[2]->Cancel();
  calls[0]->Cancel();
  calls[1]->Cancel();
  for (auto& c : calls) {
    ASSERT_TRUE(c->WaitDone(absl::Seconds(30)));
    EXPECT_EQ(c->status().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(WaitFor([&] { return h.server->metrics().active() == 0; }));
  EXPECT_EQ(s->running_.load(), 0);
}

TEST(SdkWorkerPoolTest, LimitsOutOfRangeAreRefusedAtStart) {
  for (auto mutate : std::vector<void (*)(AnalysisLimits&)>{
           [](AnalysisLimits& l) { l.worker_threads = 0; },
           [](AnalysisLimits& l) { l.max_waiting_analyses = -1; },
           [](AnalysisLimits& l) { l.stream.max_bytes = 0; },
           [](AnalysisLimits& l) { l.stream.max_updates = 0; }}) {
    ServerOptions options;
    mutate(options.limits);
    EXPECT_THAT(
        SpecialistServer::Start(std::make_unique<Sleeper>(), options),
        ::agentstream::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

int ThreadCount() {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/task"); dir != nullptr) {
    while (dirent* entry = readdir(dir)) n += entry->d_name[0] != '.';
    closedir(dir);
  }
  return n;
}

// Slow Synthetic runs waiting for their next update hold no thread: the
// process's thread count does not grow with them (the client here uses
// gRPC's callback API, which holds none either).
TEST(SdkAsyncTest, IdleAsyncRunsHoldNoThread) {
  Hosted h = Host(std::make_unique<Synthetic>(SyntheticParams{}), {});
  // Warm up: one run, so gRPC's own threads exist before counting.
  {
    StreamCall warm(h.stub.get(), Request({{"count", 2}, {"rate", 0}}), {});
    warm.Start();
    ASSERT_TRUE(warm.WaitDone(absl::Seconds(30)));
  }
  const int before = ThreadCount();
  constexpr int kRuns = 300;
  std::vector<std::unique_ptr<StreamCall>> calls;
  for (int i = 0; i < kRuns; ++i) {
    calls.push_back(std::make_unique<StreamCall>(
        h.stub.get(), Request({{"count", 100}, {"rate", 0.1}, {"size", 10}}),
        StreamCall::Options{i % 2 ? StreamForm::kSingle
                                  : StreamForm::kBatched}));
    calls.back()->Start();
  }
  for (auto& c : calls) {
    // Each got its first updates (progress and result 1), then waits 10 s.
    ASSERT_TRUE(c->WaitForUpdates(2, absl::Seconds(20)));
  }
  EXPECT_EQ(h.server->metrics().active(), kRuns);
  const int during = ThreadCount();
  std::printf("threads: %d before, %d with %d idle runs\n", before, during,
              kRuns);
  EXPECT_LE(during, before + 4);
  const absl::Time cancelled_at = absl::Now();
  for (auto& c : calls) c->Cancel();
  ASSERT_TRUE(WaitFor([&] {
    return h.server->metrics().completed(AnalysisOutcome::kCancelled) == kRuns;
  }));
  std::printf("%d idle runs cancelled in %s\n", kRuns,
              absl::FormatDuration(absl::Now() - cancelled_at).c_str());
  EXPECT_LT(h.server->metrics().last_cancel_stop_ms(), 100);
}

}  // namespace
}  // namespace agentstream::specialists
