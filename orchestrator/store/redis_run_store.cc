#include "orchestrator/store/redis_run_store.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "orchestrator/run.h"

namespace agentstream::orchestrator::store {

namespace {

// The fencing check every write of a run starts with: KEYS[1] is its meta,
// ARGV[1] the writer's lease version.
#define AS_LUA_FENCE                                       \
  "local v = redis.call('HGET', KEYS[1], 'version')\n"     \
  "if v ~= ARGV[1] then\n"                                 \
  "  return redis.error_reply('FENCED ' .. tostring(v))\n" \
  "end\n"

// Every script reads the time from Redis: leases never depend on a
// replica's clock. `now` in milliseconds.
#define AS_LUA_NOW                 \
  "local t = redis.call('TIME')\n" \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

// KEYS: meta, end, leases. ARGV: id, replica, record, lease_ms, live_ttl_ms,
// principal. 1: created; 0: the id is taken (a run, or its tombstone).
const RedisScript& CreateScript() {
  static const RedisScript script(AS_LUA_NOW R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'live', 'owner', ARGV[2], 'version', 1,
           'seq', 0, 'record', ARGV[3], 'principal', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
return 1
)lua");
  return script;
}

// KEYS: meta, log. ARGV: version, min_seq (trim below; 0: none),
// live_ttl_ms, then SEQ, BYTES pairs in seq order. Appends those after the
// stored seq (a retry after a lost reply is harmless); the stored seq, or
// the error "FENCED <version>" (another lease, or no run at all).
const RedisScript& AppendScript() {
  static const RedisScript script(AS_LUA_FENCE R"lua(
local stored = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
for i = 4, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > stored then
    redis.call('XADD', KEYS[2], '0-' .. ARGV[i], 'u', ARGV[i + 1])
    stored = seq
  end
end
if tonumber(ARGV[2]) > 1 then
  redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. ARGV[2])
end
redis.call('HSET', KEYS[1], 'seq', stored)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return stored
)lua");
  return script;
}

// KEYS: meta, log, end, leases. ARGV: version, last_seq, log_ttl_ms,
// tombstone_ttl_ms, id. 1, or the error "FENCED <version>".
const RedisScript& EndScript() {
  static const RedisScript script(AS_LUA_FENCE R"lua(
local principal = redis.call('HGET', KEYS[1], 'principal') or ''
redis.call('HSET', KEYS[1], 'state', 'ended', 'last_seq', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[2] .. ':' .. principal, 'PX', ARGV[4])
redis.call('ZREM', KEYS[4], ARGV[5])
return 1
)lua");
  return script;
}

// KEYS: leases. ARGV: prefix, lease_ms, live_ttl_ms, then ID, VERSION
// pairs. Renews the leases still this replica's; returns ID, REASON pairs
// of those that are not: "moved" (taken over) or "gone" (no such run: a
// Redis that restarted without its data).
const RedisScript& RenewScript() {
  static const RedisScript script(AS_LUA_NOW R"lua(
local lost = {}
for i = 4, #ARGV, 2 do
  local meta = ARGV[1] .. ':{' .. ARGV[i] .. '}:meta'
  local m = redis.call('HMGET', meta, 'version', 'state')
  if m[1] == ARGV[i + 1] then
    if m[2] == 'live' then
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[i])
      redis.call('PEXPIRE', meta, ARGV[3])
    end
  else
    table.insert(lost, ARGV[i])
    table.insert(lost, m[1] and 'moved' or 'gone')
  end
end
return lost
)lua");
  return script;
}

// KEYS: leases. ARGV: prefix, then ID, VERSION pairs. Lets the leases
// still this replica's expire now (a replica that stops hands its runs
// over at once).
const RedisScript& ReleaseScript() {
  static const RedisScript script(R"lua(
for i = 2, #ARGV, 2 do
  local meta = ARGV[1] .. ':{' .. ARGV[i] .. '}:meta'
  if redis.call('HGET', meta, 'version') == ARGV[i + 1] and
     redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 0, ARGV[i])
  end
end
return 1
)lua");
  return script;
}

// KEYS: leases. ARGV: prefix, replica, lease_ms, max. Takes over up to max
// runs whose lease expired: ID, VERSION, PREVIOUS_OWNER, CANCEL triples
// (quadruples) of the runs now this replica's.
const RedisScript& ClaimScript() {
  static const RedisScript script(AS_LUA_NOW R"lua(
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,
                       tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  local meta = ARGV[1] .. ':{' .. id .. '}:meta'
  local m = redis.call('HMGET', meta, 'state', 'owner', 'cancel')
  if m[1] ~= 'live' then
    redis.call('ZREM', KEYS[1], id)
  else
    local v = redis.call('HINCRBY', meta, 'version', 1)
    redis.call('HSET', meta, 'owner', ARGV[2])
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
    table.insert(out, id)
    table.insert(out, v)
    table.insert(out, m[2] or '')
    table.insert(out, m[3] or '0')
  end
end
return out
)lua");
  return script;
}

// KEYS: meta, log, end. {state, principal, seq, first_entry_id} of a held
// run, {'tomb', "LAST:PRINCIPAL"} of an expired one, nil of none.
const RedisScript& LookupScript() {
  static const RedisScript script(R"lua(
local m = redis.call('HMGET', KEYS[1], 'state', 'principal', 'seq')
if m[1] then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  local f = ''
  if #first > 0 then f = first[1][1] end
  return {m[1], m[2] or '', m[3] or '0', f}
end
local e = redis.call('GET', KEYS[3])
if e then return {'tomb', e} end
return false
)lua");
  return script;
}

// KEYS: meta. ARGV: id, channel. 1: asked (live); 0: it had ended; -1: no
// such run.
const RedisScript& CancelScript() {
  static const RedisScript script(R"lua(
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'live' then
  redis.call('HSET', KEYS[1], 'cancel', 1)
  redis.call('PUBLISH', ARGV[2], 'cancel ' .. ARGV[1])
  return 1
end
if state then return 0 end
return -1
)lua");
  return script;
}

#undef AS_LUA_NOW
#undef AS_LUA_FENCE

const RedisScript* const kAllScripts[] = {
    &CreateScript(), &AppendScript(), &EndScript(),    &RenewScript(),
    &ClaimScript(),  &LookupScript(), &CancelScript(), &ReleaseScript(),
};

// At most this much per append script call (a round may carry several).
constexpr size_t kMaxAppendEntries = 512;
constexpr size_t kMaxAppendBytes = size_t{4} << 20;
constexpr size_t kRenewChunk = 256;
// How long the reader's XREAD blocks (less than kFollowedElsewhereEvery,
// so that followers here are announced on time).
constexpr absl::Duration kReadBlock = absl::Milliseconds(500);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);

std::string Ms(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// "0-N" -> N.
bool ParseEntryId(absl::string_view id, uint64_t* seq) {
  return absl::ConsumePrefix(&id, "0-") && absl::SimpleAtoi(id, seq);
}

bool IsFenced(const RedisReply& reply) {
  return reply.is_error() && absl::StartsWith(reply.str, "FENCED");
}

// Connects and loads every script (a new connection may face a Redis that
// restarted with an empty script cache).
absl::StatusOr<std::unique_ptr<RedisConnection>> ConnectAndLoad(
    const RedisAddress& address, const RedisOptions& options) {
  absl::StatusOr<std::unique_ptr<RedisConnection>> c =
      RedisConnection::Connect(address, options);
  if (!c.ok()) return c.status();
  for (const RedisScript* script : kAllScripts) {
    if (absl::Status loaded = script->Load(**c); !loaded.ok()) return loaded;
  }
  return c;
}

// The `u` field of a stream entry reply [id, [field, value, ...]].
const std::string* EntryUpdate(const RedisReply& entry, uint64_t* seq) {
  if (entry.type != RedisReply::Type::kArray || entry.elements.size() != 2 ||
      !ParseEntryId(entry.elements[0].str, seq)) {
    return nullptr;
  }
  const auto& fields = entry.elements[1].elements;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].str == "u") return &fields[i + 1].str;
  }
  return nullptr;
}

}  // namespace

// A tracked run: what its log queued for the store, and the bounds of the
// stored copy.
struct RedisRunStore::Tracked {
  std::shared_ptr<RunLog> log;
  uint64_t version = 0;
  // What Create wrote (RunRecord JSON, principal): to create the run again
  // in a Redis that lost it.
  std::string record;
  std::string principal;
  bool recreate = false;  // Create it again before the next append.
  std::deque<std::shared_ptr<const LogEntry>> pending;
  std::optional<uint64_t> end_seq;
  // The stored copy's entries (seq, bytes) within the bounds, to trim by.
  std::deque<std::pair<uint64_t, size_t>> stored;
  size_t stored_bytes = 0;
  uint64_t min_seq = 0;
};

struct RedisRunStore::Mirror {
  std::weak_ptr<MirrorRun> run;
  std::shared_ptr<RunLog> log;
  bool filled = false;
};

struct RedisRunStore::Shared {
  absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool work ABSL_GUARDED_BY(mu) = false;
  std::map<std::string, Tracked> tracked ABSL_GUARDED_BY(mu);
  // Records of runs created or taken over, until Track() takes them.
  std::map<std::string, std::pair<std::string, std::string>> records
      ABSL_GUARDED_BY(mu);
  std::map<std::string, Mirror> mirrors ABSL_GUARDED_BY(mu);
  bool mirrors_changed ABSL_GUARDED_BY(mu) = false;
  int64_t reader_client_id ABSL_GUARDED_BY(mu) = 0;
  bool reader_blocked ABSL_GUARDED_BY(mu) = false;
  bool up ABSL_GUARDED_BY(mu) = false;
};

// A tracked log's LogStoreSink: queues under the log's lock, so only takes
// the shared mutex (which is never held while calling into a log).
class RedisRunStore::Sink final : public LogStoreSink {
 public:
  Sink(std::weak_ptr<Shared> shared, std::string id)
      : shared_(std::move(shared)), id_(std::move(id)) {}
  void OnAppended(const std::shared_ptr<const LogEntry>& entry) override {
    std::shared_ptr<Shared> shared = shared_.lock();
    if (shared == nullptr) return;
    absl::MutexLock lock(&shared->mu);
    auto it = shared->tracked.find(id_);
    if (it == shared->tracked.end()) return;
    it->second.pending.push_back(entry);
    shared->work = true;
  }
  void OnEnded(uint64_t last_seq) override {
    std::shared_ptr<Shared> shared = shared_.lock();
    if (shared == nullptr) return;
    absl::MutexLock lock(&shared->mu);
    auto it = shared->tracked.find(id_);
    if (it == shared->tracked.end()) return;
    it->second.end_seq = last_seq;
    shared->work = true;
  }

 private:
  const std::weak_ptr<Shared> shared_;
  const std::string id_;
};

RedisRunStore::RedisRunStore(RedisRunStoreOptions options)
    : options_(std::move(options)), shared_(std::make_shared<Shared>()) {}

RedisRunStore::~RedisRunStore() { Stop(); }

std::string RedisRunStore::Key(const std::string& id, const char* what) const {
  return absl::StrCat(options_.key_prefix, ":{", id, "}:", what);
}

void RedisRunStore::Start(RunStoreEvents* events) {
  events_ = events;
  writer_ = std::thread([this] { WriterLoop(); });
  reader_ = std::thread([this] { ReaderLoop(); });
  subscriber_ = std::thread([this] { SubscriberLoop(); });
}

void RedisRunStore::Stop() {
  {
    absl::MutexLock lock(&shared_->mu);
    if (shared_->stopping) return;
    shared_->stopping = true;
  }
  for (std::thread* t : {&writer_, &reader_, &subscriber_}) {
    if (t->joinable()) t->join();
  }
}

bool RedisRunStore::up() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->up;
}

absl::Status RedisRunStore::Unavailable(const absl::Status& why) const {
  return absl::UnavailableError(
      absl::StrCat("run_store_unavailable: the run store (",
                   RedisUrlForDisplay(options_.address),
                   ") cannot be reached: ", why.message(), "; retry later"));
}

absl::StatusOr<RedisConnection*> RedisRunStore::ControlLocked() {
  if (control_ != nullptr && !control_->broken()) return control_.get();
  control_.reset();
  const absl::Time now = absl::Now();
  if (now < control_retry_at_) return Unavailable(control_error_);
  absl::StatusOr<std::unique_ptr<RedisConnection>> c =
      ConnectAndLoad(options_.address, options_.redis);
  if (!c.ok()) {
    control_error_ = c.status();
    control_retry_at_ = now + absl::Milliseconds(250);
    if (options_.metrics != nullptr) options_.metrics->StoreError();
    return Unavailable(c.status());
  }
  control_ = std::move(*c);
  return control_.get();
}

absl::StatusOr<RedisReply> RedisRunStore::RunControlLocked(
    const RedisScript& script, const RedisArgv& keys, const RedisArgv& args) {
  for (int attempt = 0;; ++attempt) {
    // A connection made before Redis restarted only learns so when used:
    // then once more, on a new one.
    const bool fresh = control_ == nullptr || control_->broken();
    absl::StatusOr<RedisConnection*> c = ControlLocked();
    if (!c.ok()) return c.status();
    absl::StatusOr<RedisReply> reply = script.Run(**c, keys, args);
    if (reply.ok()) return reply;
    if (fresh || attempt > 0) {
      if (options_.metrics != nullptr) options_.metrics->StoreError();
      return Unavailable(reply.status());
    }
  }
}

absl::Status RedisRunStore::Create(const RunRecord& record) {
  const std::string meta = Key(record.request_id, "meta");
  const std::string end = Key(record.request_id, "end");
  const std::string leases = absl::StrCat(options_.key_prefix, ":leases");
  const std::string encoded = EncodeRunRecord(record);
  const std::string lease_ms = Ms(options_.lease);
  const std::string live_ms = Ms(options_.live_ttl);
  absl::MutexLock lock(&control_mu_);
  absl::StatusOr<RedisReply> reply =
      RunControlLocked(CreateScript(), {meta, end, leases},
                       {record.request_id, options_.replica_id, encoded,
                        lease_ms, live_ms, record.principal});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) {
    return absl::InternalError(
        absl::StrCat("the run store refused a new run: ", reply->str));
  }
  if (reply->integer == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("a run with request id ", record.request_id, " exists"));
  }
  absl::MutexLock shared_lock(&shared_->mu);
  shared_->records[record.request_id] = {encoded, record.principal};
  return absl::OkStatus();
}

void RedisRunStore::Track(const std::shared_ptr<Run>& run, uint64_t version) {
  const std::shared_ptr<RunLog>& log = run->log();
  bool fresh = false;
  {
    absl::MutexLock lock(&shared_->mu);
    auto [it, inserted] = shared_->tracked.try_emplace(run->request_id());
    it->second.version = version;
    if (inserted) {
      it->second.log = log;
      fresh = true;
    }
    auto record = shared_->records.find(run->request_id());
    if (record != shared_->records.end()) {
      it->second.record = std::move(record->second.first);
      it->second.principal = std::move(record->second.second);
      shared_->records.erase(record);
    }
    shared_->work = true;
  }
  if (fresh) {
    // Outside the shared mutex: the log's lock comes first (the sink takes
    // the shared mutex under it). What the log holds now is stored already
    // (a run taken over) or nothing (a new run).
    log->EnableCommitGate();
    log->SetStoreSink(std::make_shared<Sink>(shared_, run->request_id()));
  }
}

absl::StatusOr<StoredRun> RedisRunStore::Lookup(const std::string& id) {
  const std::string meta = Key(id, "meta");
  const std::string log = Key(id, "log");
  const std::string end = Key(id, "end");
  absl::MutexLock lock(&control_mu_);
  absl::StatusOr<RedisReply> reply =
      RunControlLocked(LookupScript(), {meta, log, end}, {});
  if (!reply.ok()) return reply.status();
  if (reply->is_nil()) return absl::NotFoundError(absl::StrCat("no run ", id));
  if (reply->is_error() || reply->type != RedisReply::Type::kArray ||
      reply->elements.size() < 2) {
    return absl::InternalError(absl::StrCat(
        "the run store answered a lookup with ", reply->DebugString()));
  }
  StoredRun stored;
  const auto& e = reply->elements;
  if (e[0].str == "tomb") {
    absl::string_view value = e[1].str;
    const size_t colon = value.find(':');
    if (colon == absl::string_view::npos ||
        !absl::SimpleAtoi(value.substr(0, colon), &stored.last_seq)) {
      return absl::InternalError("a malformed tombstone in the run store");
    }
    stored.principal = std::string(value.substr(colon + 1));
    stored.ended = true;
    stored.first_seq = stored.last_seq + 1;
    return stored;
  }
  if (e.size() != 4 || !absl::SimpleAtoi(e[2].str, &stored.last_seq)) {
    return absl::InternalError("a malformed run record in the run store");
  }
  stored.ended = e[0].str == "ended";
  stored.principal = e[1].str;
  if (e[3].str.empty() || !ParseEntryId(e[3].str, &stored.first_seq)) {
    stored.first_seq = stored.last_seq + 1;
  }
  return stored;
}

absl::StatusOr<std::shared_ptr<FollowedRun>> RedisRunStore::Follow(
    const std::string& id) {
  int64_t unblock = 0;
  std::shared_ptr<MirrorRun> run;
  {
    absl::MutexLock lock(&shared_->mu);
    Mirror& mirror = shared_->mirrors[id];
    run = mirror.run.lock();
    if (run == nullptr) {
      mirror.log = std::make_shared<RunLog>(options_.max_log_events,
                                            options_.max_log_bytes);
      mirror.filled = false;
      run = std::make_shared<MirrorRun>(id, mirror.log);
      mirror.run = run;
      shared_->mirrors_changed = true;
      if (shared_->reader_blocked) unblock = shared_->reader_client_id;
    }
  }
  if (unblock != 0) {
    // Wake the reader's XREAD, so that it reads this log too.
    const std::string client = absl::StrCat(unblock);
    absl::MutexLock lock(&control_mu_);
    absl::StatusOr<RedisConnection*> c = ControlLocked();
    if (c.ok()) (void)(*c)->Command({"CLIENT", "UNBLOCK", client});
  }
  return run;
}

absl::StatusOr<bool> RedisRunStore::RequestCancel(const std::string& id) {
  const std::string meta = Key(id, "meta");
  const std::string channel = absl::StrCat(options_.key_prefix, ":events");
  absl::MutexLock lock(&control_mu_);
  absl::StatusOr<RedisReply> reply =
      RunControlLocked(CancelScript(), {meta}, {id, channel});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) {
    return absl::InternalError(
        absl::StrCat("the run store refused a cancel: ", reply->str));
  }
  if (reply->integer < 0)
    return absl::NotFoundError(absl::StrCat("no run ", id));
  return reply->integer == 1;
}

void RedisRunStore::WriterLoop() {
  std::unique_ptr<RedisConnection> c;
  absl::Duration backoff = absl::Milliseconds(50);
  absl::Time connected_at;
  while (true) {
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->stopping) break;
    }
    if (c == nullptr || c->broken()) {
      c.reset();
      absl::StatusOr<std::unique_ptr<RedisConnection>> made =
          ConnectAndLoad(options_.address, options_.redis);
      if (!made.ok()) {
        {
          absl::MutexLock lock(&shared_->mu);
          if (shared_->up) {
            AS_LOG(WARNING) << "run store unreachable: " << made.status()
                            << "; runs go on, their updates held until it "
                               "is back";
          }
          shared_->up = false;
          if (options_.metrics != nullptr) options_.metrics->StoreUp(false);
          // Sleeps, waking for Stop().
          auto stopping = [](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
            return s->stopping;
          };
          shared_->mu.AwaitWithTimeout(
              absl::Condition(+stopping, shared_.get()), backoff);
        }
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      c = std::move(*made);
      backoff = absl::Milliseconds(50);
      connected_at = absl::Now();
      absl::MutexLock lock(&shared_->mu);
      if (!shared_->up) {
        AS_LOG(INFO) << "run store connected";
      }
      shared_->up = true;
      shared_->work = true;  // Renew and write at once.
      if (options_.metrics != nullptr) options_.metrics->StoreUp(true);
    }
    if (absl::Status round = WriterRound(*c, connected_at); !round.ok()) {
      AS_LOG(WARNING) << "run store: " << round;
      if (options_.metrics != nullptr) options_.metrics->StoreError();
      c.reset();
    }
  }
  // Stopping: the runs still here are handed over at once.
  std::vector<std::string> strings;
  {
    absl::MutexLock lock(&shared_->mu);
    for (auto& [id, t] : shared_->tracked) {
      strings.push_back(id);
      strings.push_back(absl::StrCat(t.version));
    }
    shared_->tracked.clear();
  }
  if (c == nullptr || c->broken() || strings.empty()) return;
  RedisArgv args = {options_.key_prefix};
  for (const std::string& s : strings) args.push_back(s);
  const std::string leases = absl::StrCat(options_.key_prefix, ":leases");
  absl::StatusOr<RedisReply> released = ReleaseScript().Run(*c, {leases}, args);
  if (released.ok() && !released->is_error()) {
    AS_LOG(INFO) << "handed " << strings.size() / 2
                 << " runs over to the other replicas";
  }
}

absl::Status RedisRunStore::WriterRound(RedisConnection& c,
                                        absl::Time connected_at) {
  const absl::Duration renew_every = options_.lease / 3;
  const absl::Duration claim_every = options_.lease / 6;
  absl::Time& next_renew = next_renew_;
  absl::Time& next_claim = next_claim_;
  {
    absl::MutexLock lock(&shared_->mu);
    auto ready = [](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
      return s->work || s->stopping;
    };
    const absl::Time due = std::min(next_renew, next_claim);
    shared_->mu.AwaitWithDeadline(absl::Condition(+ready, shared_.get()), due);
    if (shared_->stopping) return absl::OkStatus();
  }

  // What this round sends, and how each reply is read.
  enum class Kind { kCreate, kAppend, kEnd, kRenew, kClaim };
  struct Sent {
    Kind kind;
    std::string id;
    uint64_t upto = 0;  // kAppend: the last seq sent; kEnd: the last seq.
    std::shared_ptr<RunLog> log;
  };
  std::vector<Sent> sent;
  std::vector<RedisArgv> commands;
  // Storage the argv views point into (stable addresses).
  std::deque<std::string> strings;
  std::vector<std::shared_ptr<const LogEntry>> held;
  auto keep = [&strings](std::string s) -> std::string_view {
    strings.push_back(std::move(s));
    return strings.back();
  };
  const std::string leases = absl::StrCat(options_.key_prefix, ":leases");
  const std::string live_ms = Ms(options_.live_ttl);
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->work = false;
    for (auto& [id, t] : shared_->tracked) {
      if (t.recreate) {
        t.recreate = false;
        commands.push_back(CreateScript().EvalShaArgv(
            {keep(Key(id, "meta")), keep(Key(id, "end")), leases},
            {id, options_.replica_id, t.record, keep(Ms(options_.lease)),
             live_ms, t.principal},
            strings.emplace_back()));
        sent.push_back({Kind::kCreate, id, 0, t.log});
      }
      if (!t.pending.empty()) {
        RedisArgv args = {keep(absl::StrCat(t.version)), "", live_ms};
        size_t bytes = 0;
        uint64_t upto = 0;
        for (const auto& entry : t.pending) {
          if (upto != 0 && (args.size() / 2 >= kMaxAppendEntries ||
                            bytes + entry->bytes().size() > kMaxAppendBytes)) {
            break;
          }
          held.push_back(entry);
          args.push_back(keep(absl::StrCat(entry->seq)));
          args.push_back(entry->bytes());
          bytes += entry->bytes().size();
          upto = entry->seq;
          // The stored copy's bounds, as the RunLog's: trim the oldest.
          if (t.stored.empty() || entry->seq > t.stored.back().first) {
            t.stored.emplace_back(entry->seq, entry->bytes().size());
            t.stored_bytes += entry->bytes().size();
            while (t.stored.size() > 1 &&
                   (t.stored.size() > options_.max_log_events ||
                    t.stored_bytes > options_.max_log_bytes)) {
              t.stored_bytes -= t.stored.front().second;
              t.stored.pop_front();
              t.min_seq = t.stored.front().first;
            }
          }
        }
        args[1] = keep(absl::StrCat(t.min_seq));
        commands.push_back(AppendScript().EvalShaArgv(
            {keep(Key(id, "meta")), keep(Key(id, "log"))}, args,
            strings.emplace_back()));
        sent.push_back({Kind::kAppend, id, upto, t.log});
      } else if (t.end_seq.has_value()) {
        commands.push_back(EndScript().EvalShaArgv(
            {keep(Key(id, "meta")), keep(Key(id, "log")), keep(Key(id, "end")),
             leases},
            {keep(absl::StrCat(t.version)), keep(absl::StrCat(*t.end_seq)),
             keep(Ms(options_.log_ttl)), keep(Ms(options_.tombstone_ttl)), id},
            strings.emplace_back()));
        sent.push_back({Kind::kEnd, id, *t.end_seq, t.log});
      }
    }
    if (now >= next_renew) {
      next_renew = now + renew_every;
      RedisArgv args;
      for (auto& [id, t] : shared_->tracked) {
        if (args.empty()) {
          args = {options_.key_prefix, keep(Ms(options_.lease)), live_ms};
        }
        args.push_back(id);
        args.push_back(keep(absl::StrCat(t.version)));
        if ((args.size() - 3) / 2 >= kRenewChunk) {
          commands.push_back(RenewScript().EvalShaArgv({leases}, args,
                                                       strings.emplace_back()));
          sent.push_back({Kind::kRenew, "", 0, nullptr});
          args.clear();
        }
      }
      if (!args.empty()) {
        commands.push_back(
            RenewScript().EvalShaArgv({leases}, args, strings.emplace_back()));
        sent.push_back({Kind::kRenew, "", 0, nullptr});
      }
    }
    // Nothing is taken over in the first lease period after connecting:
    // owners that lost the store meanwhile get that long to renew.
    if (now >= next_claim && now >= connected_at + options_.lease) {
      next_claim = now + claim_every;
      commands.push_back(ClaimScript().EvalShaArgv(
          {leases},
          {options_.key_prefix, options_.replica_id, keep(Ms(options_.lease)),
           keep(absl::StrCat(options_.max_claims))},
          strings.emplace_back()));
      sent.push_back({Kind::kClaim, "", 0, nullptr});
    } else if (now < connected_at + options_.lease) {
      next_claim = connected_at + options_.lease;
    }
  }
  if (commands.empty()) return absl::OkStatus();

  absl::StatusOr<std::vector<RedisReply>> replies = c.Pipeline(commands);
  if (!replies.ok()) return replies.status();

  std::vector<std::string> lost;  // Taken over by another replica.
  std::vector<std::string> gone;  // Not in the store any more.
  struct Claimed {
    std::string id;
    uint64_t version;
    std::string previous;
    bool cancel;
  };
  std::vector<Claimed> claimed;
  struct Committed {
    std::shared_ptr<RunLog> log;
    uint64_t seq;
  };
  std::vector<Committed> committed;
  int64_t appended = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    const RedisReply& reply = (*replies)[i];
    const Sent& s = sent[i];
    if (RedisScript::IsNoScript(reply)) {
      // A Redis that lost its scripts (SCRIPT FLUSH): a new connection
      // loads them again; what was not acknowledged is sent again.
      return absl::UnavailableError("the run store lost its scripts");
    }
    switch (s.kind) {
      case Kind::kCreate:
        if (reply.is_error() || reply.integer != 1) {
          AS_LOG(WARNING) << s.id << ": cannot create the run again in the "
                          << "run store: " << reply.DebugString();
        }
        break;
      case Kind::kAppend:
      case Kind::kEnd: {
        if (IsFenced(reply)) {
          (reply.str == "FENCED false" ? gone : lost).push_back(s.id);
          break;
        }
        if (reply.is_error()) {
          AS_LOG(WARNING) << s.id
                          << ": the run store refused a write: " << reply.str;
          if (options_.metrics != nullptr) options_.metrics->StoreError();
          break;
        }
        absl::MutexLock lock(&shared_->mu);
        auto it = shared_->tracked.find(s.id);
        if (it == shared_->tracked.end()) break;
        Tracked& t = it->second;
        if (s.kind == Kind::kAppend) {
          const uint64_t stored = static_cast<uint64_t>(reply.integer);
          while (!t.pending.empty() && t.pending.front()->seq <= stored) {
            t.pending.pop_front();
            ++appended;
          }
          committed.push_back({s.log, stored});
          if (!t.pending.empty() || t.end_seq.has_value()) shared_->work = true;
        } else {
          shared_->tracked.erase(it);
        }
        break;
      }
      case Kind::kRenew:
        if (reply.is_error()) {
          AS_LOG(WARNING) << "run store: renewing leases: " << reply.str;
          break;
        }
        for (size_t k = 0; k + 1 < reply.elements.size(); k += 2) {
          (reply.elements[k + 1].str == "gone" ? gone : lost)
              .push_back(reply.elements[k].str);
        }
        break;
      case Kind::kClaim:
        if (reply.is_error()) {
          AS_LOG(WARNING) << "run store: looking for runs to take over: "
                          << reply.str;
          break;
        }
        for (size_t k = 0; k + 3 < reply.elements.size(); k += 4) {
          claimed.push_back(
              {reply.elements[k].str,
               static_cast<uint64_t>(reply.elements[k + 1].integer),
               reply.elements[k + 2].str, reply.elements[k + 3].str == "1"});
        }
        break;
    }
  }
  held.clear();
  for (const Committed& done : committed) {
    done.log->Commit(done.seq);
    done.log->Notify();
  }
  if (appended > 0 && options_.metrics != nullptr) {
    options_.metrics->StoreAppended(appended);
  }
  for (const std::string& id : lost) {
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->tracked.erase(id) == 0) continue;
    }
    events_->OnLost(
        id, absl::UnavailableError(absl::StrCat(
                "run_moved: run ", id,
                " continues on another orchestrator replica; attach again")));
  }
  for (const std::string& id : gone) Recreate(id);
  for (const Claimed& claim : claimed) {
    TakeOver(c, claim.id, claim.version, claim.previous, claim.cancel);
    if (c.broken()) {
      return absl::UnavailableError(
          absl::StrCat("taking run ", claim.id, " over: ", c.broken_reason()));
    }
  }
  return absl::OkStatus();
}

void RedisRunStore::Recreate(const std::string& id) {
  std::shared_ptr<RunLog> log;
  {
    absl::MutexLock lock(&shared_->mu);
    auto it = shared_->tracked.find(id);
    if (it == shared_->tracked.end() || it->second.recreate) return;
    log = it->second.log;
  }
  // What the log holds, read outside the shared mutex (the log's lock comes
  // first): the whole run, or the store cannot have it back.
  std::vector<std::shared_ptr<const LogEntry>> entries;
  bool whole = false;
  log->Read([&](const RunLog::View& view) {
    whole = view.first_seq() == 1;
    if (!whole) return;
    // Every entry appended, shown or not: the view's last seq is what
    // followers may see; the rest is queued already.
    for (uint64_t seq = 1; seq <= view.last_seq(); ++seq) {
      entries.push_back(view.At(seq));
    }
  });
  bool recreated = false;
  {
    absl::MutexLock lock(&shared_->mu);
    auto it = shared_->tracked.find(id);
    if (it == shared_->tracked.end()) return;
    Tracked& t = it->second;
    if (whole && !t.record.empty()) {
      // The entries the store had: before what is still queued.
      std::deque<std::shared_ptr<const LogEntry>> pending;
      for (auto& e : entries) {
        if (t.pending.empty() || e->seq < t.pending.front()->seq) {
          pending.push_back(std::move(e));
        }
      }
      for (auto& e : t.pending) pending.push_back(std::move(e));
      t.pending = std::move(pending);
      t.stored.clear();
      t.stored_bytes = 0;
      t.min_seq = 0;
      t.version = 1;
      t.recreate = true;
      shared_->work = true;
      recreated = true;
    } else {
      shared_->tracked.erase(it);
    }
  }
  if (recreated) {
    AS_LOG(WARNING) << id
                    << ": the run store no longer had this run (Redis "
                       "restarted without its data?); written again from "
                       "memory";
    return;
  }
  events_->OnLost(
      id, absl::DataLossError(absl::StrCat(
              "run_store_lost: the run store lost run ", id,
              " (Redis restarted without its data?) and this replica no "
              "longer holds all of it; start the question again")));
}

void RedisRunStore::TakeOver(RedisConnection& c, const std::string& id,
                             uint64_t version, const std::string& previous,
                             bool cancel) {
  absl::StatusOr<RedisReply> record_reply =
      c.Command({"HGET", Key(id, "meta"), "record"});
  if (!record_reply.ok()) return;
  if (record_reply->type != RedisReply::Type::kString) {
    AS_LOG(WARNING) << id << ": taken over but its record is gone";
    return;
  }
  absl::StatusOr<RunRecord> record = DecodeRunRecord(record_reply->str);
  if (!record.ok()) {
    AS_LOG(WARNING) << id << ": cannot take over: " << record.status();
    return;
  }
  std::vector<std::string> stored;
  const std::string log_key = Key(id, "log");
  std::string from = "-";
  while (true) {
    absl::StatusOr<RedisReply> page =
        c.Command({"XRANGE", log_key, from, "+", "COUNT", "1000"});
    if (!page.ok()) return;
    if (page->is_error()) {
      AS_LOG(WARNING) << id << ": cannot read its log: " << page->str;
      return;
    }
    uint64_t last = 0;
    for (const RedisReply& entry : page->elements) {
      const std::string* update = EntryUpdate(entry, &last);
      if (update != nullptr) stored.push_back(*update);
    }
    if (page->elements.size() < 1000) break;
    from = absl::StrCat("(0-", last);
  }
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->records[id] = {record_reply->str, record->principal};
  }
  const std::string note = absl::StrCat(
      "Orchestrator replica ", options_.replica_id, " took this run over",
      previous.empty() ? std::string()
                       : absl::StrCat(": replica ", previous,
                                      " stopped renewing its lease"));
  absl::Status taken = events_->OnTakeOver(*record, stored, version, note);
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->records.erase(id);  // Taken by Track, or not wanted.
  }
  if (!taken.ok()) {
    AS_LOG(WARNING) << id << ": cannot take over: " << taken
                    << " (its lease lapses again)";
    return;
  }
  if (cancel) events_->OnCancelRequested(id);
}

void RedisRunStore::ReaderLoop() {
  std::unique_ptr<RedisConnection> c;
  absl::Duration backoff = absl::Milliseconds(50);
  absl::Time next_watch = absl::InfinitePast();
  const std::string channel = absl::StrCat(options_.key_prefix, ":events");
  while (true) {
    struct Item {
      std::string id;
      std::shared_ptr<MirrorRun> run;
      bool filled;
    };
    std::vector<Item> items;
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->stopping) break;
      for (auto it = shared_->mirrors.begin(); it != shared_->mirrors.end();) {
        std::shared_ptr<MirrorRun> run = it->second.run.lock();
        if (run == nullptr) {
          it = shared_->mirrors.erase(it);
          continue;
        }
        items.push_back({it->first, std::move(run), it->second.filled});
        ++it;
      }
      shared_->mirrors_changed = false;
      if (items.empty()) {
        auto changed = [](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
          return s->mirrors_changed || s->stopping;
        };
        shared_->mu.AwaitWithTimeout(absl::Condition(+changed, shared_.get()),
                                     kReadBlock);
        continue;
      }
    }
    if (c == nullptr || c->broken()) {
      c.reset();
      absl::StatusOr<std::unique_ptr<RedisConnection>> made =
          RedisConnection::Connect(options_.address, options_.redis);
      if (!made.ok()) {
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      c = std::move(*made);
      backoff = absl::Milliseconds(50);
      absl::MutexLock lock(&shared_->mu);
      shared_->reader_client_id = c->client_id();
    }
    // Appends what the store gave for one run; ends its log at `complete`.
    auto take = [](const std::shared_ptr<RunLog>& log, const std::string& u) {
      absl::StatusOr<uint64_t> seq = log->AppendStored(u);
      if (!seq.ok() || *seq == 0) return;
      RunLog::Next next = log->ReadAfter(*seq - 1);
      if (next.entry != nullptr &&
          next.entry->kind == agentstream::v1::Update::kComplete) {
        log->End();
      }
    };
    // A new follower's run: what the store holds so far.
    for (Item& item : items) {
      if (item.filled) continue;
      const std::shared_ptr<RunLog>& log = item.run->log();
      std::string from = absl::StrCat("0-", log->last_seq() + 1);
      bool ok = true;
      while (true) {
        absl::StatusOr<RedisReply> page = c->Command(
            {"XRANGE", Key(item.id, "log"), from, "+", "COUNT", "1000"});
        if (!page.ok() || page->is_error()) {
          ok = false;
          break;
        }
        uint64_t last = 0;
        for (const RedisReply& entry : page->elements) {
          const std::string* update = EntryUpdate(entry, &last);
          if (update != nullptr) take(log, *update);
        }
        if (page->elements.size() < 1000) break;
        from = absl::StrCat("(0-", last);
      }
      if (!ok) break;
      log->Notify();
      item.filled = true;
      absl::MutexLock lock(&shared_->mu);
      auto it = shared_->mirrors.find(item.id);
      if (it != shared_->mirrors.end()) it->second.filled = true;
    }
    if (c->broken()) continue;
    // Followers here keep the owner from cancelling for want of one.
    const absl::Time now = absl::Now();
    if (now >= next_watch) {
      next_watch = now + kFollowedElsewhereEvery;
      std::vector<std::string> payloads;
      std::vector<RedisArgv> publishes;
      for (const Item& item : items) {
        if (item.run->followers() > 0 && !item.run->log()->ended()) {
          payloads.push_back(absl::StrCat("watch ", item.id));
        }
      }
      for (const std::string& p : payloads) {
        publishes.push_back({"PUBLISH", channel, p});
      }
      if (!publishes.empty()) (void)c->Pipeline(publishes);
      if (c->broken()) continue;
    }
    // One blocking read over every live mirror.
    std::vector<std::string> keys;
    std::vector<std::string> ids;
    std::map<std::string, std::shared_ptr<RunLog>> by_key;
    for (const Item& item : items) {
      if (!item.filled || item.run->log()->ended()) continue;
      keys.push_back(Key(item.id, "log"));
      ids.push_back(absl::StrCat("0-", item.run->log()->last_seq()));
      by_key[keys.back()] = item.run->log();
    }
    if (keys.empty()) {
      absl::MutexLock lock(&shared_->mu);
      auto changed = [](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
        return s->mirrors_changed || s->stopping;
      };
      shared_->mu.AwaitWithTimeout(absl::Condition(+changed, shared_.get()),
                                   kReadBlock);
      continue;
    }
    const std::string block = Ms(kReadBlock);
    RedisArgv argv = {"XREAD", "COUNT", "1000", "BLOCK", block, "STREAMS"};
    for (const std::string& k : keys) argv.push_back(k);
    for (const std::string& i : ids) argv.push_back(i);
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->mirrors_changed) continue;
      shared_->reader_blocked = true;
    }
    absl::StatusOr<RedisReply> reply =
        c->Command(argv, kReadBlock + options_.redis.command_timeout);
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->reader_blocked = false;
    }
    if (!reply.ok() || reply->is_nil() || reply->is_error()) continue;
    for (const RedisReply& stream : reply->elements) {
      if (stream.elements.size() != 2) continue;
      auto it = by_key.find(stream.elements[0].str);
      if (it == by_key.end()) continue;
      for (const RedisReply& entry : stream.elements[1].elements) {
        uint64_t seq = 0;
        const std::string* update = EntryUpdate(entry, &seq);
        if (update != nullptr) take(it->second, *update);
      }
      it->second->Notify();
    }
  }
}

void RedisRunStore::SubscriberLoop() {
  std::unique_ptr<RedisConnection> c;
  absl::Duration backoff = absl::Milliseconds(50);
  const std::string channel = absl::StrCat(options_.key_prefix, ":events");
  while (true) {
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->stopping) break;
    }
    if (c == nullptr || c->broken()) {
      c.reset();
      absl::StatusOr<std::unique_ptr<RedisConnection>> made =
          RedisConnection::Connect(options_.address, options_.redis);
      if (!made.ok()) {
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      c = std::move(*made);
      backoff = absl::Milliseconds(50);
      c->Append({"SUBSCRIBE", channel});
      if (!c->Flush().ok()) continue;
    }
    absl::StatusOr<std::optional<RedisReply>> reply =
        c->ReadReply(absl::Milliseconds(250));
    if (!reply.ok() || !reply->has_value()) continue;
    const RedisReply& message = **reply;
    if (message.type != RedisReply::Type::kArray ||
        message.elements.size() != 3 || message.elements[0].str != "message") {
      continue;
    }
    absl::string_view payload = message.elements[2].str;
    if (absl::ConsumePrefix(&payload, "cancel ")) {
      events_->OnCancelRequested(std::string(payload));
    } else if (absl::ConsumePrefix(&payload, "watch ")) {
      events_->OnFollowedElsewhere(std::string(payload));
    }
  }
}

}  // namespace agentstream::orchestrator::store
