// A value parsed from a file that is re-read when the file changes, so keys
// and tokens rotate without a restart (docs/SECURITY.md, "Rotating keys").
//
// No thread: Get() looks at the file at most once per interval (by the
// injected clock) and re-reads it when its identity, size or modification
// time changed, or while its modification time is too recent to tell two
// writes apart (file times are coarser than writes: git's "racily clean"
// case); then it is parsed only when its contents differ. A new file that
// does not parse is logged and the previous value kept. Thread-safe; Get() is a
// mutex and a shared_ptr copy except on the calls that check the file.
#ifndef AGENTSTREAM_GATEWAY_AUTH_RELOADING_FILE_H_
#define AGENTSTREAM_GATEWAY_AUTH_RELOADING_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace agentstream::gateway::auth {

// What tells one version of a file from the next.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

absl::StatusOr<FileStamp> StatFile(const std::string& path);

// The whole file; kInvalidArgument when it is larger than `max_bytes`.
absl::StatusOr<std::string> ReadBoundedFile(const std::string& path,
                                            size_t max_bytes);

// Logs a failed reload (one place for the message's form).
void LogReloadFailure(const std::string& path, const absl::Status& status);

// Whether a file with `stamp`, read at real time `read_at`, may still
// change without its stamp changing.
bool RacyStamp(const FileStamp& stamp, absl::Time read_at);

template <typename T>
class ReloadingFile final {
 public:
  using Parser =
      std::function<absl::StatusOr<std::shared_ptr<const T>>(std::string)>;

  // Reads and parses the file now: an error if it cannot.
  static absl::StatusOr<std::unique_ptr<ReloadingFile>> Open(
      std::string path, size_t max_bytes, Parser parse, absl::Duration interval,
      const Clock* clock) {
    auto file = std::unique_ptr<ReloadingFile>(new ReloadingFile(
        std::move(path), max_bytes, std::move(parse), interval, clock));
    absl::MutexLock lock(&file->mu_);
    absl::Status s = file->LoadLocked();
    if (!s.ok()) return s;
    return file;
  }

  // The current value; never null.
  std::shared_ptr<const T> Get() {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    if (now - last_check_ >= interval_) {
      last_check_ = now;
      absl::Status s = LoadLocked();
      // Logged once per distinct failure, not once per interval.
      if (!s.ok() && s.message() != last_error_) {
        LogReloadFailure(path_, s);
        last_error_ = std::string(s.message());
      } else if (s.ok()) {
        last_error_.clear();
      }
    }
    return value_;
  }

  // How many times the file was (re)loaded successfully (tests).
  uint64_t loads() const {
    absl::MutexLock lock(&mu_);
    return loads_;
  }

 private:
  ReloadingFile(std::string path, size_t max_bytes, Parser parse,
                absl::Duration interval, const Clock* clock)
      : path_(std::move(path)),
        max_bytes_(max_bytes),
        parse_(std::move(parse)),
        interval_(interval),
        clock_(clock),
        last_check_(clock->Now()) {}

  // Re-reads when the stamp changed; on any error keeps the value (and the
  // old stamp, so a fixed file with the same stamp is not skipped).
  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<FileStamp> stamp = StatFile(path_);
    if (!stamp.ok()) return stamp.status();
    if (value_ != nullptr && *stamp == stamp_ && !racy_) {
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> contents = ReadBoundedFile(path_, max_bytes_);
    if (!contents.ok()) return contents.status();
    // File times are real time, whatever clock decides the interval.
    const bool racy = RacyStamp(*stamp, Clock::Real()->Now());
    if (value_ != nullptr && *contents == contents_) {
      stamp_ = *stamp;
      racy_ = racy;
      return absl::OkStatus();
    }
    absl::StatusOr<std::shared_ptr<const T>> parsed = parse_(*contents);
    if (!parsed.ok()) {
      return absl::Status(
          parsed.status().code(),
          path_ + ": " + std::string(parsed.status().message()));
    }
    value_ = std::move(*parsed);
    contents_ = std::move(*contents);
    stamp_ = *stamp;
    racy_ = racy;
    ++loads_;
    return absl::OkStatus();
  }

  const std::string path_;
  const size_t max_bytes_;
  const Parser parse_;
  const absl::Duration interval_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::Time last_check_ ABSL_GUARDED_BY(mu_);
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  bool racy_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_error_ ABSL_GUARDED_BY(mu_);  // the last one logged
  std::string contents_ ABSL_GUARDED_BY(mu_);    // what value_ was parsed from
  std::shared_ptr<const T> value_ ABSL_GUARDED_BY(mu_);
  uint64_t loads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_RELOADING_FILE_H_
