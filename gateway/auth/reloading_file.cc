#include "gateway/auth/reloading_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace agentstream::gateway::auth {

absl::StatusOr<FileStamp> StatFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(path + ": " + std::strerror(errno));
  }
  return FileStamp{
      .dev = st.st_dev,
      .ino = st.st_ino,
      .size = st.st_size,
      .mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec,
      .ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec};
}

absl::StatusOr<std::string> ReadBoundedFile(const std::string& path,
                                            size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(path + ": " + std::strerror(errno));
  std::string out;
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::UnavailableError(path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return absl::InvalidArgumentError(path + ": larger than " +
                                        std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool RacyStamp(const FileStamp& stamp, absl::Time read_at) {
  // Linux file times advance with the kernel's tick (a few ms); two
  // seconds is generous for any filesystem we run on but FAT.
  constexpr int64_t kRacyWindowNs = int64_t{2} * 1000000000;
  return stamp.mtime_ns >= absl::ToUnixNanos(read_at) - kRacyWindowNs ||
         stamp.ctime_ns >= absl::ToUnixNanos(read_at) - kRacyWindowNs;
}

void LogReloadFailure(const std::string& path, const absl::Status& status) {
  AS_LOG(ERROR) << "auth: cannot reload " << path << " (keeping the "
                << "previous contents): " << status.message();
}

}  // namespace agentstream::gateway::auth
