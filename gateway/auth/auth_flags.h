// The gateway's authentication flags (docs/SECURITY.md), registered from
// AuthOptions' defaults so that each default is written once.
#ifndef AGENTSTREAM_GATEWAY_AUTH_AUTH_FLAGS_H_
#define AGENTSTREAM_GATEWAY_AUTH_AUTH_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/flags.h"
#include "gateway/auth/auth_options.h"

namespace agentstream::gateway::auth {

// What the flags are parsed into before AuthOptions (modes and durations
// are read as text and numbers).
struct AuthFlagValues {
  AuthOptions options;
  std::string mode;
  int64_t clock_skew_s = 0;
  bool protect_metrics = false;
  bool protect_readyz = false;
};

// Registers --auth, --auth-* and --auth-protect-metrics/-readyz on `flags`
// with `values` (which must outlive Parse) holding the defaults.
void RegisterAuthFlags(FlagSet& flags, AuthFlagValues* values);
// Reads the parsed text into values->options: kInvalidArgument naming the
// flag when a value is bad (files are checked when the gateway starts).
absl::Status ApplyAuthFlags(AuthFlagValues* values);

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_AUTH_FLAGS_H_
