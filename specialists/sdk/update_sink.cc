#include "specialists/sdk/update_sink.h"

#include <algorithm>
#include <utility>

#include "common/update_json.h"

namespace agentstream::specialists {
namespace {

google::protobuf::Struct ObjectStruct(const nlohmann::json& j) {
  if (j.is_object()) return JsonToStruct(j);
  return JsonToStruct(nlohmann::json{{"value", j}});
}

class FunctionTarget final : public UpdateSink::Target {
 public:
  FunctionTarget(UpdateSink::Writer writer, UpdateSink::RoomProbe room)
      : writer_(std::move(writer)), room_(std::move(room)) {}
  bool Write(agentstream::v1::Update&& update) override {
    return writer_(std::move(update));
  }
  bool HasRoom() override { return room_ == nullptr || room_(); }

 private:
  const UpdateSink::Writer writer_;
  const UpdateSink::RoomProbe room_;
};

}  // namespace

UpdateSink::UpdateSink(Stamp stamp, const Clock* clock, Writer writer,
                       RoomProbe room)
    : request_id_(std::move(stamp.request_id)),
      origin_(std::make_shared<const Origin>(
          Origin{std::move(stamp.specialist), std::move(stamp.instance)})),
      clock_(clock),
      owned_(
          std::make_unique<FunctionTarget>(std::move(writer), std::move(room))),
      target_(owned_.get()) {}

UpdateSink::UpdateSink(std::string request_id,
                       std::shared_ptr<const Origin> origin, const Clock* clock,
                       Target* target)
    : request_id_(std::move(request_id)),
      origin_(std::move(origin)),
      clock_(clock),
      target_(target) {}

bool UpdateSink::Progress(int pct, std::string current_action) {
  agentstream::v1::Update update;
  auto* progress = update.mutable_progress();
  {
    absl::MutexLock lock(&mu_);
    last_progress_ = std::max(last_progress_, std::clamp(pct, 0, 100));
    progress->set_progress(static_cast<uint32_t>(last_progress_));
  }
  progress->set_current_action(std::move(current_action));
  return Send(std::move(update));
}

bool UpdateSink::Thinking(std::string thought, bool visible) {
  agentstream::v1::Update update;
  auto* thinking = update.mutable_thinking();
  thinking->set_agent(origin_->specialist);
  thinking->set_thought(std::move(thought));
  thinking->set_visible(visible);
  return Send(std::move(update));
}

bool UpdateSink::ToolCall(std::string tool, const nlohmann::json& parameters) {
  return ToolCall(std::move(tool), ObjectStruct(parameters));
}

bool UpdateSink::ToolCall(std::string tool,
                          google::protobuf::Struct parameters) {
  agentstream::v1::Update update;
  auto* call = update.mutable_tool_call();
  call->set_tool(std::move(tool));
  *call->mutable_parameters() = std::move(parameters);
  return Send(std::move(update));
}

bool UpdateSink::PartialResult(const nlohmann::json& result) {
  return PartialResult(ObjectStruct(result));
}

bool UpdateSink::PartialResult(google::protobuf::Struct result) {
  agentstream::v1::Update update;
  *update.mutable_partial_result()->mutable_result() = std::move(result);
  return Send(std::move(update));
}

bool UpdateSink::Send(agentstream::v1::Update update) {
  update.set_request_id(request_id_);
  update.set_specialist(origin_->specialist);
  update.set_instance(origin_->instance);
  update.set_seq(0);
  absl::MutexLock lock(&mu_);
  if (broken_) return false;
  // Stamped under the lock so emitted_at is monotonic in stream order.
  update.set_emitted_at(clock_->NowNanos());
  if (!target_->Write(std::move(update))) {
    broken_ = true;
    return false;
  }
  ++updates_sent_;
  return true;
}

bool UpdateSink::ok() const {
  absl::MutexLock lock(&mu_);
  return !broken_;
}

int64_t UpdateSink::updates_sent() const {
  absl::MutexLock lock(&mu_);
  return updates_sent_;
}

}  // namespace agentstream::specialists
