// The one way a specialist's Analyze() streams its work: progress, thinking,
// tool calls and partial results. The sink stamps every update's envelope
// (request_id, emitted_at from the injected Clock, specialist = the card's
// name, instance) so an author never fills those in.
//
// Every method returns false once the stream is gone (the client went away
// or a write failed); from then on nothing more is written, and the SDK has
// also tripped the analysis's CancelToken. Thread-safe: updates from several
// threads are serialised.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_UPDATE_SINK_H_
#define AGENTSTREAM_SPECIALISTS_SDK_UPDATE_SINK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agentstream/v1/update.pb.h"
#include "common/clock.h"
#include "google/protobuf/struct.pb.h"
#include "nlohmann/json.hpp"

namespace agentstream::specialists {

class UpdateSink final {
 public:
  // Writes (or queues) one stamped update; returns false when the stream is
  // gone. Blocking analyses' writers may block while the stream's queue is
  // full (docs/SPECIALISTS.md, "Streams and back-pressure").
  using Writer = std::function<bool(agentstream::v1::Update&&)>;
  // Whether the stream can take more without holding the producer back.
  using RoomProbe = std::function<bool()>;

  struct Stamp {
    std::string request_id;
    std::string specialist;  // The card's name.
    std::string instance;    // hostname:port of this replica.
  };
  // The part of the stamp that every call of one server shares.
  struct Origin {
    std::string specialist;
    std::string instance;
  };
  // Where the updates go: Writer and RoomProbe in one object (the SDK's
  // calls are one), so that a sink that lives as long as its call holds a
  // pointer rather than two std::functions.
  class Target {
   public:
    virtual ~Target() = default;
    virtual bool Write(agentstream::v1::Update&& update) = 0;
    virtual bool HasRoom() = 0;
  };

  // `clock` must outlive the sink. Without `room`, HasRoom() is always true.
  UpdateSink(Stamp stamp, const Clock* clock, Writer writer,
             RoomProbe room = nullptr);
  // `clock` and `target` must outlive the sink.
  UpdateSink(std::string request_id, std::shared_ptr<const Origin> origin,
             const Clock* clock, Target* target);
  UpdateSink(const UpdateSink&) = delete;
  UpdateSink& operator=(const UpdateSink&) = delete;

  // `pct` is clamped to 0..100 and never goes backwards within one analysis
  // (a smaller value is sent as the previous one).
  bool Progress(int pct, std::string current_action);
  bool Thinking(std::string thought, bool visible = true);
  // `parameters` must be a JSON object (for `data_query`:
  // {"sql": "...", "params": [...]}); anything else is sent as {"value": x}.
  bool ToolCall(std::string tool, const nlohmann::json& parameters);
  bool ToolCall(std::string tool, google::protobuf::Struct parameters);
  // `result` must be a JSON object; anything else is sent as {"value": x}.
  bool PartialResult(const nlohmann::json& result);
  bool PartialResult(google::protobuf::Struct result);
  // Sends an update of any kind after stamping its envelope.
  bool Send(agentstream::v1::Update update);

  // False once a write failed.
  bool ok() const;
  // For asynchronous analyses (async_specialist.h): false while the
  // stream's queue is full; emit no more in this step then.
  bool HasRoom() const { return target_->HasRoom(); }
  int64_t updates_sent() const;
  const std::string& request_id() const { return request_id_; }
  const std::string& specialist() const { return origin_->specialist; }
  const std::string& instance() const { return origin_->instance; }

 private:
  const std::string request_id_;
  const std::shared_ptr<const Origin> origin_;
  const Clock* const clock_;
  std::unique_ptr<Target> owned_;  // The Writer's and RoomProbe's, if given.
  Target* target_;

  mutable absl::Mutex mu_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  int last_progress_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t updates_sent_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_UPDATE_SINK_H_
