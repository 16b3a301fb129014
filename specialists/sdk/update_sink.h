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

  // `clock` must outlive the sink. Without `room`, HasRoom() is always true.
  UpdateSink(Stamp stamp, const Clock* clock, Writer writer,
             RoomProbe room = nullptr);
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
  bool HasRoom() const { return room_ == nullptr || room_(); }
  int64_t updates_sent() const;
  const Stamp& stamp() const { return stamp_; }

 private:
  const Stamp stamp_;
  const Clock* const clock_;
  const Writer writer_;
  const RoomProbe room_;

  mutable absl::Mutex mu_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  int last_progress_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t updates_sent_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_UPDATE_SINK_H_
