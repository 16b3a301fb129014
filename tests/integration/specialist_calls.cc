#include "tests/integration/specialist_calls.h"

#include <chrono>
#include <utility>

namespace agentstream::testing {

using agentstream::v1::Update;
using agentstream::v1::UpdateBatch;

// What both forms share; the typed reactors below feed it.
class StreamCall::Reactor {
 public:
  Reactor(agentstream::v1::AnalyzeRequest request, Options options)
      : request_(std::move(request)), options_(options) {
    context_.set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(options.deadline));
  }
  virtual ~Reactor() = default;
  virtual void Start(agentstream::v1::Specialist::Stub* stub) = 0;

  void Cancel() { context_.TryCancel(); }
  bool WaitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }
  bool WaitForUpdates(int64_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return count_ >= n || done_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return count_ >= n;
  }
  bool done() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  grpc::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  std::vector<Update> updates() const {
    absl::MutexLock lock(&mu_);
    return updates_;
  }
  int64_t count() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }
  int64_t messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  int64_t empty() const {
    absl::MutexLock lock(&mu_);
    return empty_;
  }

 protected:
  void Received(Update* update) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++count_;
    if (options_.keep_updates) updates_.push_back(std::move(*update));
  }
  void OnMessage(Update* update) {
    absl::MutexLock lock(&mu_);
    ++messages_;
    Received(update);
  }
  void OnMessage(UpdateBatch* batch) {
    absl::MutexLock lock(&mu_);
    ++messages_;
    if (batch->updates().empty()) ++empty_;
    for (Update& u : *batch->mutable_updates()) Received(&u);
  }
  void Ended(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    status_ = status;
    done_ = true;
  }

  grpc::ClientContext context_;
  const agentstream::v1::AnalyzeRequest request_;
  const Options options_;

 private:
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  std::vector<Update> updates_ ABSL_GUARDED_BY(mu_);
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t messages_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t empty_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {

template <typename Message>
class TypedReactor final : public StreamCall::Reactor,
                           public grpc::ClientReadReactor<Message> {
 public:
  using StreamCall::Reactor::Reactor;

  void Start(agentstream::v1::Specialist::Stub* stub) override {
    if constexpr (std::is_same_v<Message, Update>) {
      stub->async()->Analyze(&context_, &request_, this);
    } else {
      stub->async()->AnalyzeBatched(&context_, &request_, this);
    }
    if (options_.read) this->StartRead(&message_);
    this->StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows with the status.
    OnMessage(&message_);
    message_.Clear();
    this->StartRead(&message_);
  }
  void OnDone(const grpc::Status& status) override { Ended(status); }

 private:
  Message message_;
};

}  // namespace

StreamCall::StreamCall(agentstream::v1::Specialist::Stub* stub,
                       agentstream::v1::AnalyzeRequest request, Options options)
    : reactor_(
          options.form == StreamForm::kSingle
              ? std::unique_ptr<Reactor>(std::make_unique<TypedReactor<Update>>(
                    std::move(request), options))
              : std::unique_ptr<Reactor>(
                    std::make_unique<TypedReactor<UpdateBatch>>(
                        std::move(request), options))),
      stub_(stub) {}

StreamCall::~StreamCall() {
  if (!started_) return;
  reactor_->Cancel();
  // The reactor is gRPC's until OnDone; a call that does not end is leaked
  // rather than freed under gRPC.
  if (!reactor_->WaitDone(absl::Seconds(10))) reactor_.release();
}

void StreamCall::Start() {
  started_ = true;
  reactor_->Start(stub_);
}
void StreamCall::Cancel() { reactor_->Cancel(); }
bool StreamCall::WaitDone(absl::Duration timeout) {
  return reactor_->WaitDone(timeout);
}
bool StreamCall::WaitForUpdates(int64_t n, absl::Duration timeout) {
  return reactor_->WaitForUpdates(n, timeout);
}
bool StreamCall::done() const { return reactor_->done(); }
grpc::Status StreamCall::status() const { return reactor_->status(); }
std::vector<Update> StreamCall::updates() const { return reactor_->updates(); }
int64_t StreamCall::update_count() const { return reactor_->count(); }
int64_t StreamCall::message_count() const { return reactor_->messages(); }
int64_t StreamCall::empty_batches() const { return reactor_->empty(); }

}  // namespace agentstream::testing
