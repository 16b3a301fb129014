#include "orchestrator/run_manager.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/audit.h"
#include "common/log.h"
#include "common/run_id.h"
#include "orchestrator/planner.h"

namespace agentstream::orchestrator {

absl::StatusOr<std::map<std::string, SpecialistDeadlines>>
ParseSpecialistDeadlineFlags(const std::vector<std::string>& values) {
  std::map<std::string, SpecialistDeadlines> out;
  for (const std::string& value : values) {
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (part.empty()) continue;
      auto bad = [&part](absl::string_view why) {
        return absl::InvalidArgumentError(
            absl::StrCat("--specialist-deadline wants NAME=SOFT_MS:HARD_MS, "
                         "got \"",
                         part, "\": ", why));
      };
      std::vector<absl::string_view> kv =
          absl::StrSplit(part, absl::MaxSplits('=', 1));
      if (kv.size() != 2) return bad("no '='");
      const std::string name(absl::StripAsciiWhitespace(kv[0]));
      std::vector<absl::string_view> ms = absl::StrSplit(kv[1], ':');
      if (name.empty()) return bad("no name");
      if (ms.size() != 2) return bad("expected two durations SOFT_MS:HARD_MS");
      int64_t soft = 0, hard = 0;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(ms[0]), &soft) ||
          !absl::SimpleAtoi(absl::StripAsciiWhitespace(ms[1]), &hard) ||
          soft < 0 || hard < 0) {
        return bad("durations are whole milliseconds >= 0");
      }
      if (soft > 0 && hard > 0 && hard < soft) {
        return bad("the hard deadline comes before the soft one");
      }
      if (!out.emplace(name, SpecialistDeadlines{absl::Milliseconds(soft),
                                                 absl::Milliseconds(hard)})
               .second) {
        return bad("the name is given twice");
      }
    }
  }
  return out;
}

bool ValidRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

namespace {

absl::Status NoSuchRun(const std::string& request_id) {
  return absl::NotFoundError(absl::StrCat("no run ", request_id));
}

nlohmann::json AuditFields(const Caller& caller, const std::string& run_id,
                           const std::string& correlation_id,
                           nlohmann::json fields) {
  fields.update({{"principal", caller.principal},
                 {"run", run_id},
                 {"peer", caller.peer_address}});
  if (caller.admin) fields["admin"] = true;
  if (!caller.peer_identity.empty()) fields["peer_name"] = caller.peer_identity;
  if (!caller.client_address.empty()) fields["client"] = caller.client_address;
  if (!correlation_id.empty()) fields["correlation_id"] = correlation_id;
  return fields;
}

// Someone else's run: answered as an unknown one, and audited.
absl::Status Refused(const char* what, const Caller& caller,
                     const std::string& request_id) {
  Audit("access_refused", AuditFields(caller, request_id, caller.correlation_id,
                                      {{"action", what}}));
  return NoSuchRun(request_id);
}

RunManagerOptions Normalized(RunManagerOptions options) {
  if (options.max_total_log_bytes > 0) {
    options.max_log_bytes =
        std::min(options.max_log_bytes, options.max_total_log_bytes);
  }
  return options;
}

}  // namespace

RunManager::RunManager(RunManagerOptions options,
                       const SpecialistRegistry* registry, const Clock* clock,
                       OrchestratorMetrics* metrics, RunStore* store)
    : options_(Normalized(std::move(options))),
      owned_store_(store == nullptr ? std::make_unique<LocalRunStore>()
                                    : nullptr),
      store_(store == nullptr ? owned_store_.get() : store),
      registry_(registry),
      clock_(clock),
      metrics_(metrics),
      memory_(
          std::make_shared<RunMemory>(options_.max_total_log_bytes, metrics)),
      lifecycle_(std::make_shared<Lifecycle>()),
      tombstones_(options_.max_tombstones, options_.tombstone_ttl) {
  memory_->SetReliefHandler([this] { RelieveMemory(); });
}

RunManager::~RunManager() {
  // Runs (and their entries) may outlive the manager; their appends must
  // not reach it any more.
  memory_->SetReliefHandler(nullptr);
}

absl::StatusOr<std::shared_ptr<Run>> RunManager::CreateRun(
    const agentstream::v1::RunRequest& request,
    const std::string& metadata_request_id, const Caller& caller) {
  std::string id =
      request.request_id().empty() ? metadata_request_id : request.request_id();
  if (!id.empty() && !ValidRequestId(id)) {
    return absl::InvalidArgumentError(
        "request_id must be 1 to 128 characters of [A-Za-z0-9._-]");
  }
  // Only a trusted caller chooses a run's id: anyone else could learn from
  // kAlreadyExists which ids exist.
  std::string correlation_id = caller.correlation_id;
  if (!caller.trusted || id.empty()) {
    if (correlation_id.empty()) correlation_id = id;
    id = NewRunId();
  }

  std::vector<std::string> forced(request.specialists().begin(),
                                  request.specialists().end());
  absl::StatusOr<Plan> plan =
      PlanQuestion(request.message(), registry_->PlanningCards(), forced);
  if (!plan.ok()) return plan.status();

  std::vector<Run::Participant> participants;
  nlohmann::json specialists = nlohmann::json::array();
  for (PlannedSpecialist& planned : plan->specialists) {
    specialists.push_back(planned.card.name());
    std::shared_ptr<SpecialistClient> client =
        registry_->Client(planned.card.name());
    if (client == nullptr) {
      return absl::InternalError(
          absl::StrCat("no client for ", planned.card.name()));
    }
    participants.push_back({std::move(planned), std::move(client)});
  }

  // What another replica needs to continue the run (a shared store only).
  RunRecord record;
  if (store_->shared()) {
    record.request_id = id;
    record.principal = caller.principal;
    record.question = request.message();
    record.options = request.options();
    record.reasoning = plan->reasoning;
    record.on_disconnect = request.on_disconnect();
    for (const Run::Participant& p : participants) {
      record.participants.push_back({p.planned.card, p.planned.task});
    }
  }

  SweepIfDue();
  std::shared_ptr<Run> run;
  {
    // Admitted and counted under one lock: a burst of starts cannot all
    // pass admission before any of them holds memory.
    absl::MutexLock lock(&mu_);
    if (runs_.count(id) != 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("a run with request id ", id, " exists"));
    }
    if (absl::Status admitted = AdmitLocked(clock_->Now()); !admitted.ok()) {
      return admitted;
    }
    // A new run under the id of an expired one replaces its tombstone.
    tombstones_.Erase(id);
    run = MakeRunLocked(id, request.message(), request.options(),
                        std::move(plan->reasoning), std::move(participants),
                        request.on_disconnect(), caller.principal);
  }
  if (store_->shared()) {
    // Claimed store-wide before it starts: no other replica has the id, and
    // another can continue the run from its record.
    if (absl::Status created = store_->Create(record); !created.ok()) {
      {
        absl::MutexLock lock(&mu_);
        runs_.erase(id);
      }
      run->Abandon(created);
      return created;
    }
  }
  store_->Track(run, 1);
  Audit("run_start", AuditFields(caller, id, correlation_id,
                                 {{"specialists", std::move(specialists)}}));
  return run;
}

std::shared_ptr<Run> RunManager::MakeRunLocked(
    const std::string& id, const std::string& question,
    const google::protobuf::Struct& options, std::string reasoning,
    std::vector<Run::Participant> participants,
    agentstream::v1::DisconnectPolicy on_disconnect,
    const std::string& principal) {
  RunOptions run_options;
  run_options.max_log_events = options_.max_log_events;
  run_options.max_log_bytes = options_.max_log_bytes;
  run_options.max_attempts = options_.max_attempts;
  run_options.soft_deadline = options_.soft_deadline;
  run_options.hard_deadline = options_.hard_deadline;
  run_options.deadlines_by_kind = options_.deadlines_by_kind;
  run_options.on_disconnect = on_disconnect;
  run_options.owner = principal;
  run_options.memory = memory_;
  // The callback needs the run, which does not exist yet.
  auto self = std::make_shared<std::weak_ptr<Run>>();
  auto on_finished = [lifecycle = lifecycle_, self] {
    absl::MutexLock lock(&lifecycle->mu);
    --lifecycle->live;
    lifecycle->ended.push_back(*self);
  };
  auto run = std::make_shared<Run>(id, question, options, std::move(reasoning),
                                   std::move(participants), clock_, run_options,
                                   metrics_, std::move(on_finished));
  *self = run;
  size_t live = 0;
  {
    absl::MutexLock lifecycle_lock(&lifecycle_->mu);
    live = ++lifecycle_->live;
  }
  runs_[id] = run;
  AS_LOG(INFO) << id << ": new run; " << live << " live, " << runs_.size()
               << " held, " << memory_->bytes() << " bytes charged";
  return run;
}

absl::Status RunManager::AdmitLocked(absl::Time now) {
  AbsorbEndedLocked();
  size_t live = 0;
  {
    absl::MutexLock lock(&lifecycle_->mu);
    live = lifecycle_->live;
  }
  if (options_.max_runs > 0 && live >= options_.max_runs) {
    if (metrics_ != nullptr) metrics_->RunRefused("max_runs");
    return absl::ResourceExhaustedError(
        absl::StrCat("at_capacity: ", live,
                     " runs are going on, the orchestrator's limit "
                     "(--max-runs); retry later"));
  }
  // Room for the new run's share of the bound: a full log while the bound
  // holds that many, else an equal share with the live runs (so runs whose
  // clients never read cannot lock everyone else out). Made by dropping
  // ended logs, the first ended first; then by cutting the largest live
  // logs down towards the share.
  const size_t limit = memory_->limit();
  const size_t need = std::min<size_t>(options_.max_log_bytes,
                                       limit / std::max<size_t>(live + 1, 1));
  auto fits = [&] { return memory_->bytes() + need <= limit; };
  if (!fits()) DropEndedLogsLocked(limit - need, now, /*followed_too=*/false);
  // An update cut from a log stays charged while a follower is writing it
  // (a stuck client holds the oldest one): cut deeper by what was not
  // freed, a few rounds at most.
  size_t target = limit - need;
  for (int round = 0; round < 4 && !fits(); ++round) {
    TrimLiveLogsLocked(target, need);
    if (fits()) break;
    const size_t still_over = memory_->bytes() - (limit - need);
    target = target > still_over ? target - still_over : 0;
  }
  if (!fits()) DropEndedLogsLocked(limit - need, now, /*followed_too=*/true);
  if (fits()) return absl::OkStatus();
  if (metrics_ != nullptr) metrics_->RunRefused("memory");
  return absl::ResourceExhaustedError(absl::StrCat(
      "at_capacity: the orchestrator's runs hold ", memory_->bytes(), " of ",
      limit, " bytes (--max-total-log-bytes) and cannot make room for the ",
      need, " bytes of another run's share; retry later"));
}

void RunManager::AbsorbEndedLocked() {
  std::vector<std::weak_ptr<Run>> ended;
  {
    absl::MutexLock lock(&lifecycle_->mu);
    ended.swap(lifecycle_->ended);
  }
  for (std::weak_ptr<Run>& weak : ended) {
    Ended entry{std::move(weak), 0};
    std::shared_ptr<Run> run = HeldLocked(entry);
    if (run == nullptr) continue;
    entry.bytes = run->log()->bytes() + run->charged_bytes();
    ended_bytes_ += entry.bytes;
    ended_.push_back(std::move(entry));
  }
}

std::shared_ptr<Run> RunManager::HeldLocked(const Ended& entry) const {
  std::shared_ptr<Run> run = entry.run.lock();
  if (run == nullptr) return nullptr;
  auto it = runs_.find(run->request_id());
  if (it == runs_.end() || it->second != run) return nullptr;
  return run;
}

void RunManager::PruneEndedLocked() {
  while (!ended_.empty() && HeldLocked(ended_.front()) == nullptr) {
    ended_bytes_ -= std::min(ended_bytes_, ended_.front().bytes);
    ended_.pop_front();
  }
}

void RunManager::DropEndedLogsLocked(size_t target, absl::Time now,
                                     bool followed_too) {
  int64_t dropped = 0;
  // An ended run that a follower is still reading (its last updates on
  // their way out) is passed over unless `followed_too`: dropping it would
  // cut a reader that is keeping up.
  for (const bool spare_followed : {true, false}) {
    if (!spare_followed && !followed_too) break;
    std::deque<Ended> passed_over;
    while (memory_->bytes() > target && !ended_.empty()) {
      Ended entry = std::move(ended_.front());
      ended_.pop_front();
      std::shared_ptr<Run> run = HeldLocked(entry);
      if (run == nullptr) {
        ended_bytes_ -= std::min(ended_bytes_, entry.bytes);
        continue;
      }
      if (spare_followed && run->log()->has_listeners()) {
        passed_over.push_back(std::move(entry));
        continue;
      }
      ended_bytes_ -= std::min(ended_bytes_, entry.bytes);
      tombstones_.Add(run->request_id(), run->log()->last_seq(), now,
                      OwnerKey(run->owner()));
      runs_.erase(run->request_id());
      run->log()->Drop();
      ++dropped;
      AS_LOG(INFO) << run->request_id()
                   << ": ended run's log dropped before its TTL to make room "
                      "(--max-total-log-bytes); resuming it is a gap";
    }
    // Back in front, in their order: they ended first.
    while (!passed_over.empty()) {
      ended_.push_front(std::move(passed_over.back()));
      passed_over.pop_back();
    }
    if (memory_->bytes() <= target) break;
  }
  if (dropped > 0 && metrics_ != nullptr) metrics_->LogsDropped(dropped);
}

void RunManager::TrimLiveLogsLocked(size_t target, size_t floor) {
  const size_t bytes = memory_->bytes();
  if (bytes <= target) return;
  const size_t excess = bytes - target;
  std::vector<std::pair<size_t, RunLog*>> logs;
  // A log at or under the floor (a run's fair share) is never cut: a run
  // that keeps within its share never loses updates to others' excess.
  // Those over it are evened out as deep as it takes.
  for (const auto& [id, run] : runs_) {
    if (run->finished()) continue;
    const size_t log_bytes = run->log()->bytes();
    if (log_bytes > floor) logs.emplace_back(log_bytes, run->log().get());
  }
  std::sort(logs.begin(), logs.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  // The level the largest `count` logs are cut to: the highest that frees
  // `excess` (0, all of them, when even that is not enough).
  size_t count = logs.size();
  size_t level = 0;
  size_t sum = 0;
  for (size_t k = 0; k < logs.size(); ++k) {
    sum += logs[k].first;
    const size_t next = k + 1 < logs.size() ? logs[k + 1].first : 0;
    if (sum - (k + 1) * next >= excess) {
      count = k + 1;
      level = (sum - excess) / count;
      break;
    }
  }
  int64_t trimmed = 0;
  for (size_t i = 0; i < count; ++i) {
    trimmed += static_cast<int64_t>(logs[i].second->TrimTo(level));
  }
  if (trimmed > 0) {
    if (metrics_ != nullptr) metrics_->UpdatesTrimmed(trimmed);
    AS_LOG(WARNING) << "run logs over --max-total-log-bytes ("
                    << memory_->limit()
                    << ") with no ended log left: " << trimmed
                    << " updates dropped from the " << count
                    << " largest live logs (now at most " << level
                    << " bytes each); their followers that need them get a "
                       "gap";
  }
}

void RunManager::RelieveMemory() {
  absl::MutexLock lock(&mu_);
  const size_t target = memory_->relief_target();
  AbsorbEndedLocked();
  DropEndedLogsLocked(target, clock_->Now(), /*followed_too=*/false);
  size_t live = 0;
  {
    absl::MutexLock lock(&lifecycle_->mu);
    live = lifecycle_->live;
  }
  TrimLiveLogsLocked(
      target, std::min<size_t>(options_.max_log_bytes,
                               memory_->limit() / std::max<size_t>(live, 1)));
  DropEndedLogsLocked(target, clock_->Now(), /*followed_too=*/true);
}

std::shared_ptr<Run> RunManager::Find(const std::string& request_id) {
  SweepIfDue();
  absl::MutexLock lock(&mu_);
  auto it = runs_.find(request_id);
  return it == runs_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<FollowedRun>> RunManager::Attach(
    const std::string& request_id, uint64_t after_seq, const Caller& caller) {
  if (metrics_ != nullptr) metrics_->Attached(after_seq > 0);
  SweepIfDue();
  std::shared_ptr<Run> run;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(request_id);
    if (it != runs_.end()) {
      run = it->second;
      if (!MayAccess(caller, run->owner())) {
        return Refused("attach", caller, request_id);
      }
    } else if (!store_->shared()) {
      std::optional<TombstoneTable::Found> tombstone =
          tombstones_.Lookup(request_id, clock_->Now());
      if (!tombstone.has_value()) return NoSuchRun(request_id);
      if (!MayAccessKey(caller, tombstone->owner_key)) {
        return Refused("attach", caller, request_id);
      }
      return EndedAt(request_id, after_seq, tombstone->last_seq);
    }
  }
  if (run == nullptr) return AttachStored(request_id, after_seq, caller);
  // Against what the log holds, not only what it shows: with a shared
  // store, a client may have read an update from the store (through another
  // replica) before this one heard that it was stored.
  const uint64_t last_seq = run->log()->last_seq();
  if (after_seq > last_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_seq ", after_seq, " is ahead of run ", request_id,
                     " (its last seq is ", last_seq, ")"));
  }
  // An ended run attached at its last seq: nothing to send, and the caller
  // answers at once without accepting a stream (the gateway's 204).
  if (after_seq == last_seq && run->log()->ended() &&
      run->log()->visible_seq() == last_seq) {
    return nullptr;
  }
  return run;
}

absl::StatusOr<std::shared_ptr<FollowedRun>> RunManager::EndedAt(
    const std::string& request_id, uint64_t after_seq, uint64_t last_seq) {
  // At or past the end (only the end is known): nothing more to send.
  if (after_seq >= last_seq) return nullptr;
  if (metrics_ != nullptr) metrics_->Gap();
  return absl::OutOfRangeError(absl::StrCat(
      "gap: run ", request_id, " has ended and its log has expired; seq ",
      after_seq + 1, " to ", last_seq, " are lost"));
}

absl::StatusOr<std::shared_ptr<FollowedRun>> RunManager::AttachStored(
    const std::string& request_id, uint64_t after_seq, const Caller& caller) {
  absl::StatusOr<StoredRun> stored = store_->Lookup(request_id);
  if (absl::IsNotFound(stored.status())) return NoSuchRun(request_id);
  if (!stored.ok()) return stored.status();
  if (!MayAccess(caller, stored->principal)) {
    return Refused("attach", caller, request_id);
  }
  // As for a run held here: an ended run whose log is held answers as a
  // live one would, one of which only the end is known as a tombstone.
  const bool held = stored->first_seq <= stored->last_seq;
  if (stored->ended && (!held || after_seq == stored->last_seq)) {
    return EndedAt(request_id, after_seq, stored->last_seq);
  }
  if (after_seq > stored->last_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_seq ", after_seq, " is ahead of run ", request_id,
                     " (its last seq is ", stored->last_seq, ")"));
  }
  if (after_seq + 1 < stored->first_seq) {
    if (metrics_ != nullptr) metrics_->Gap();
    return absl::OutOfRangeError(
        absl::StrCat("gap: the run's log no longer holds seq ", after_seq + 1,
                     " (it starts at ", stored->first_seq, ")"));
  }
  absl::StatusOr<std::shared_ptr<FollowedRun>> followed =
      store_->Follow(request_id);
  if (followed.ok() && metrics_ != nullptr) metrics_->AttachedThroughStore();
  return followed;
}

absl::StatusOr<bool> RunManager::Cancel(const std::string& request_id,
                                        const Caller& caller) {
  std::shared_ptr<Run> run = Find(request_id);
  if (run == nullptr && store_->shared()) {
    absl::StatusOr<StoredRun> stored = store_->Lookup(request_id);
    if (absl::IsNotFound(stored.status())) return NoSuchRun(request_id);
    if (!stored.ok()) return stored.status();
    if (!MayAccess(caller, stored->principal)) {
      return Refused("cancel", caller, request_id);
    }
    absl::StatusOr<bool> cancelled = store_->RequestCancel(request_id);
    if (cancelled.ok()) {
      Audit("run_cancel",
            AuditFields(caller, request_id, caller.correlation_id,
                        {{"cancelled", *cancelled}, {"through_store", true}}));
    }
    return cancelled;
  }
  if (run == nullptr) {
    absl::MutexLock lock(&mu_);
    std::optional<TombstoneTable::Found> tombstone =
        tombstones_.Lookup(request_id, clock_->Now());
    if (!tombstone.has_value()) return NoSuchRun(request_id);
    if (!MayAccessKey(caller, tombstone->owner_key)) {
      return Refused("cancel", caller, request_id);
    }
    return false;
  }
  if (!MayAccess(caller, run->owner())) {
    return Refused("cancel", caller, request_id);
  }
  const bool cancelled =
      run->Cancel(CancelReason::kRequest, "cancelled by request");
  Audit("run_cancel", AuditFields(caller, request_id, caller.correlation_id,
                                  {{"cancelled", cancelled}}));
  return cancelled;
}

void RunManager::OnCancelRequested(const std::string& id) {
  std::shared_ptr<Run> run = Find(id);
  if (run == nullptr) return;
  if (run->Cancel(CancelReason::kRequest,
                  "cancelled by request (through another replica)")) {
    AS_LOG(INFO) << id << ": cancelled by a request through another replica";
  }
}

void RunManager::OnFollowedElsewhere(const std::string& id) {
  std::shared_ptr<Run> run = Find(id);
  if (run != nullptr) {
    run->FollowedElsewhere(clock_->Now() + kFollowedElsewhereHold);
  }
}

void RunManager::OnLost(const std::string& id, const absl::Status& why) {
  std::shared_ptr<Run> run;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(id);
    if (it == runs_.end()) return;
    run = std::move(it->second);
    runs_.erase(it);
  }
  AS_LOG(WARNING) << id << ": stopped here: " << why;
  if (metrics_ != nullptr) metrics_->RunLost();
  run->Abandon(why);
}

absl::Status RunManager::OnTakeOver(const RunRecord& record,
                                    const std::vector<std::string>& stored,
                                    uint64_t version, const std::string& note) {
  std::vector<Run::Participant> participants;
  for (const RunRecord::Participant& p : record.participants) {
    std::shared_ptr<SpecialistClient> client = registry_->Client(p.card.name());
    if (client == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", record.request_id, " needs ", p.card.name(),
                       ", which this replica does not know"));
    }
    PlannedSpecialist planned;
    planned.card = p.card;
    planned.task = p.task;
    participants.push_back({std::move(planned), client});
  }
  std::shared_ptr<Run> run;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(record.request_id);
    if (it != runs_.end()) {
      // This replica's own run, whose lease lapsed while the store was
      // away: it goes on as it was, under the new lease.
      if (!it->second->finished()) {
        run = it->second;
      } else {
        runs_.erase(it);
      }
    }
    if (run != nullptr) {
      store_->Track(run, version);
      AS_LOG(INFO) << record.request_id
                   << ": this replica's lease on the run lapsed while the "
                      "store was away; taken back (lease "
                   << version << ")";
      return absl::OkStatus();
    }
    run = MakeRunLocked(record.request_id, record.question, record.options,
                        record.reasoning, std::move(participants),
                        record.on_disconnect, record.principal);
  }
  if (absl::Status loaded = run->LoadStored(stored); !loaded.ok()) {
    run->Abandon(loaded);
    absl::MutexLock lock(&mu_);
    runs_.erase(record.request_id);
    return loaded;
  }
  store_->Track(run, version);
  if (metrics_ != nullptr) metrics_->RunTakenOver();
  AS_LOG(INFO) << record.request_id << ": taken over (lease " << version
               << ") at seq " << run->log()->last_seq() << ": " << note;
  run->Resume(note);
  return absl::OkStatus();
}

void RunManager::ReleaseFollower(const std::shared_ptr<FollowedRun>& followed,
                                 bool cut_off) {
  if (!followed->RemoveFollower()) return;
  // A run held elsewhere: its owner applies the policy (it hears of this
  // replica's followers while there are any).
  std::shared_ptr<Run> run = std::dynamic_pointer_cast<Run>(followed);
  if (run == nullptr) return;
  agentstream::v1::DisconnectPolicy policy = run->on_disconnect();
  if (cut_off && policy == agentstream::v1::DISCONNECT_POLICY_CANCEL) {
    // Not the client's leaving: it was told to reconnect; the sweep cancels
    // the run if it does not come back within the grace period.
    AS_LOG(INFO) << run->request_id()
                 << ": the last follower was cut off as slow_consumer; "
                    "cancelled unless one attaches within "
                 << absl::FormatDuration(options_.disconnect_grace);
    return;
  }
  switch (policy) {
    case agentstream::v1::DISCONNECT_POLICY_CONTINUE:
      AS_LOG(INFO) << run->request_id()
                   << ": the last client went away; the run goes on";
      return;
    case agentstream::v1::DISCONNECT_POLICY_CANCEL:
      run->Cancel(CancelReason::kDisconnect, "the last client went away");
      return;
    default:
      if (options_.disconnect_grace <= absl::ZeroDuration()) {
        run->CancelIfOrphanedSince(clock_->Now(), "the last client went away");
      } else {
        AS_LOG(INFO) << run->request_id()
                     << ": the last client went away; cancelled unless one "
                        "attaches within "
                     << absl::FormatDuration(options_.disconnect_grace);
      }
      return;
  }
}

void RunManager::SweepIfDue() {
  bool ended;
  {
    absl::MutexLock lock(&lifecycle_->mu);
    ended = !lifecycle_->ended.empty();
  }
  if (!ended) {
    absl::MutexLock lock(&mu_);
    if (clock_->Now() < next_due_) return;
  }
  Sweep();
}

absl::Time RunManager::Sweep() {
  const absl::Time now = clock_->Now();
  absl::Time next = absl::InfiniteFuture();
  std::vector<std::shared_ptr<Run>> orphaned;
  std::vector<std::shared_ptr<Run>> running;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = runs_.begin(); it != runs_.end();) {
      const std::shared_ptr<Run>& run = it->second;
      std::optional<absl::Time> ended = run->finished_at();
      if (ended.has_value() && now - *ended >= options_.log_ttl) {
        tombstones_.Add(it->first, run->log()->last_seq(), now,
                        OwnerKey(run->owner()));
        // Freed now, even if a follower still holds the log (it gets a gap).
        run->log()->Drop();
        it = runs_.erase(it);
        continue;
      }
      if (ended.has_value()) next = std::min(next, *ended + options_.log_ttl);
      if (!ended.has_value()) running.push_back(run);
      std::optional<absl::Time> orphan = run->orphaned_since();
      if (orphan.has_value() &&
          run->on_disconnect() != agentstream::v1::DISCONNECT_POLICY_CONTINUE) {
        if (now - *orphan >= options_.disconnect_grace) {
          orphaned.push_back(run);
        } else {
          next = std::min(next, *orphan + options_.disconnect_grace);
        }
      }
      ++it;
    }
    tombstones_.Prune(now);
    AbsorbEndedLocked();
    PruneEndedLocked();
  }
  for (const auto& run : orphaned) {
    run->CancelIfOrphanedSince(
        now - options_.disconnect_grace,
        absl::StrCat("no client came back within ",
                     absl::FormatDuration(options_.disconnect_grace)));
    if (std::optional<absl::Time> ended = run->finished_at(); ended) {
      next = std::min(next, *ended + options_.log_ttl);
    }
  }
  for (const auto& run : running) {
    run->CheckDeadlines(now);
    if (std::optional<absl::Time> due = run->NextDeadline(); due.has_value()) {
      next = std::min(next, *due);
    }
    // A deadline may have ended it just now: its TTL counts from then.
    if (std::optional<absl::Time> ended = run->finished_at(); ended) {
      next = std::min(next, *ended + options_.log_ttl);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    next_due_ = next;
  }
  return next;
}

void RunManager::CancelAll(const std::string& message) {
  std::vector<std::shared_ptr<Run>> runs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, run] : runs_) runs.push_back(run);
  }
  for (const auto& run : runs) run->Cancel(CancelReason::kShutdown, message);
}

void RunManager::AbandonAll(const absl::Status& why) {
  std::vector<std::shared_ptr<Run>> runs;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, run] : runs_) runs.push_back(run);
  }
  for (const auto& run : runs) run->Abandon(why);
}

size_t RunManager::run_count() const {
  absl::MutexLock lock(&mu_);
  return runs_.size();
}

size_t RunManager::live_run_count() const {
  absl::MutexLock lock(&lifecycle_->mu);
  return lifecycle_->live;
}

size_t RunManager::tombstone_count() const {
  absl::MutexLock lock(&mu_);
  return tombstones_.size();
}

}  // namespace agentstream::orchestrator
