#include "common/audit.h"

#include <string>

#include "common/log.h"

namespace agentstream {

void Audit(std::string_view event, const nlohmann::json& fields) {
  // The event first, so that a reader sees at once what the line is.
  nlohmann::ordered_json line = {{"event", std::string(event)}};
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) line[key] = value;
  }
  // Not through AS_LOG: audit lines are written at every log level.
  LogMessage(LogLevel::kInfo, __FILE__, __LINE__).stream()
      << "audit "
      << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace agentstream
