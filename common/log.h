// Minimal structured-enough logging to stderr (containers collect stdout and
// stderr). One line per message, with a UTC timestamp, level and component.
//
//   AS_LOG(INFO) << "listening on " << address;
//
// Thread-safe: each message is formatted in full, then written with one
// fwrite of the whole line.
#ifndef AGENTSTREAM_COMMON_LOG_H_
#define AGENTSTREAM_COMMON_LOG_H_

#include <sstream>
#include <string>

namespace agentstream {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the process's component name (shown on every line) and minimum level.
void InitLogging(const std::string& component, LogLevel min_level);
// Parses "debug", "info", "warning", "error"; anything else gives kInfo.
LogLevel ParseLogLevel(const std::string& name);
bool LogEnabled(LogLevel level);

class LogMessage final {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  const LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace agentstream

#define AS_LOG_LEVEL_DEBUG ::agentstream::LogLevel::kDebug
#define AS_LOG_LEVEL_INFO ::agentstream::LogLevel::kInfo
#define AS_LOG_LEVEL_WARNING ::agentstream::LogLevel::kWarning
#define AS_LOG_LEVEL_ERROR ::agentstream::LogLevel::kError

#define AS_LOG(level)                                     \
  if (!::agentstream::LogEnabled(AS_LOG_LEVEL_##level)) { \
  } else                                                  \
    ::agentstream::LogMessage(AS_LOG_LEVEL_##level, __FILE__, __LINE__).stream()

#endif  // AGENTSTREAM_COMMON_LOG_H_
