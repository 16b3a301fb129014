// What a follower (a Run or Attach stream) follows: a run of this replica
// (Run), or a run another replica holds, its log mirrored from the run
// store (MirrorRun).
#ifndef AGENTSTREAM_ORCHESTRATOR_FOLLOWED_RUN_H_
#define AGENTSTREAM_ORCHESTRATOR_FOLLOWED_RUN_H_

#include <atomic>
#include <memory>
#include <string>

#include "orchestrator/run_log.h"

namespace agentstream::orchestrator {

class FollowedRun {
 public:
  virtual ~FollowedRun() = default;
  virtual const std::string& request_id() const = 0;
  virtual const std::shared_ptr<RunLog>& log() const = 0;
  // Followers come and go; RemoveFollower returns true when it removed the
  // last one of a run still going.
  virtual void AddFollower() = 0;
  virtual bool RemoveFollower() = 0;
  virtual int followers() const = 0;
};

// A run held by another replica: its log as the store gives it (appended
// with RunLog::AppendStored by the store's reader), for this replica's
// followers. Thread-safe.
class MirrorRun final : public FollowedRun {
 public:
  MirrorRun(std::string request_id, std::shared_ptr<RunLog> log)
      : request_id_(std::move(request_id)), log_(std::move(log)) {}
  const std::string& request_id() const override { return request_id_; }
  const std::shared_ptr<RunLog>& log() const override { return log_; }
  void AddFollower() override { followers_.fetch_add(1); }
  bool RemoveFollower() override {
    return followers_.fetch_sub(1) == 1 && !log_->ended();
  }
  int followers() const override { return followers_.load(); }

 private:
  const std::string request_id_;
  const std::shared_ptr<RunLog> log_;
  std::atomic<int> followers_{0};
};

}  // namespace agentstream::orchestrator

#endif  // AGENTSTREAM_ORCHESTRATOR_FOLLOWED_RUN_H_
