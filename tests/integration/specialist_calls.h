// Calls a specialist's Analyze or AnalyzeBatched with gRPC's callback client
// API, so a test or the load tool can hold thousands of calls open without a
// thread each. Shared by specialist_stream_test and specialist_load.
//
// A StreamCall reads its stream to the end (or, with `read = false`, never
// reads, to stand for a client that does not keep up), keeps the updates it
// received (flattened: a batch counts as its updates, in order) and the final
// status. Thread-safe: the getters may be called while the call runs.
#ifndef AGENTSTREAM_TESTS_INTEGRATION_SPECIALIST_CALLS_H_
#define AGENTSTREAM_TESTS_INTEGRATION_SPECIALIST_CALLS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentstream/v1/specialist.grpc.pb.h"

namespace agentstream::testing {

enum class StreamForm { kSingle, kBatched };  // Analyze, AnalyzeBatched.

class StreamCall final {
 public:
  struct Options {
    StreamForm form = StreamForm::kBatched;
    bool read = true;          // false: never reads a message.
    bool keep_updates = true;  // false: counts only (load tests).
    absl::Duration deadline = absl::Seconds(60);
  };

  StreamCall(agentstream::v1::Specialist::Stub* stub,
             agentstream::v1::AnalyzeRequest request, Options options);
  ~StreamCall();  // Cancels the call and waits (bounded) for it to end.
  StreamCall(const StreamCall&) = delete;
  StreamCall& operator=(const StreamCall&) = delete;

  void Start();
  void Cancel();  // The client cancelling (TryCancel).
  // True once the call ended within `timeout`.
  bool WaitDone(absl::Duration timeout);
  // True once `n` updates arrived within `timeout`.
  bool WaitForUpdates(int64_t n, absl::Duration timeout);

  bool done() const;
  grpc::Status status() const;
  std::vector<agentstream::v1::Update> updates() const;
  int64_t update_count() const;
  int64_t message_count() const;  // gRPC messages (batches or updates).
  int64_t empty_batches() const;  // UpdateBatch messages with no update.

  class Reactor;  // Implementation detail (specialist_calls.cc).

 private:
  std::unique_ptr<Reactor> reactor_;
  agentstream::v1::Specialist::Stub* const stub_;
  bool started_ = false;
};

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_INTEGRATION_SPECIALIST_CALLS_H_
