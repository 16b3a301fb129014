#include "gateway/request_id.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"

namespace agentstream::gateway {

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string GenerateRequestId() {
  // absl::BitGen is not thread-safe; one per thread, each seeded from the OS.
  thread_local absl::BitGen gen;
  const uint64_t bits = absl::Uniform<uint64_t>(gen);
  return absl::StrFormat("req_%016x", bits);
}

std::string AcceptOrGenerateRequestId(std::string_view client_id) {
  if (IsValidRequestId(client_id)) return std::string(client_id);
  return GenerateRequestId();
}

}  // namespace agentstream::gateway
