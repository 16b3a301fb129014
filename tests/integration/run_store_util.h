// What the run store (a Topology's redis-server, docs/SCALING.md) says of a
// run, for the tests with several orchestrator replicas. Header-only.
#ifndef AGENTSTREAM_TESTS_INTEGRATION_RUN_STORE_UTIL_H_
#define AGENTSTREAM_TESTS_INTEGRATION_RUN_STORE_UTIL_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "orchestrator/store/redis_connection.h"
#include "tests/testing/topology.h"

namespace agentstream::testing {

// The replica (its --replica-id, the process name) that owns run `id`; ""
// when the store cannot be read or has no such run.
inline std::string RunOwner(Topology& t, const std::string& id) {
  if (t.redis() == nullptr) return "";
  auto address = orchestrator::store::ParseRedisUrl(t.redis()->url());
  if (!address.ok()) return "";
  auto c = orchestrator::store::RedisConnection::Connect(*address);
  if (!c.ok()) return "";
  auto reply = (*c)->Command(
      {"HGET", absl::StrCat("agentstream:{", id, "}:meta"), "owner"});
  return reply.ok() ? reply->str : "";
}

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_INTEGRATION_RUN_STORE_UTIL_H_
