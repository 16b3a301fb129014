// The AML rules the ComplianceExpert applies, as pure functions over rows
// already selected by SQL (docs/SPECIALISTS.md states them):
//
//  structuring  >= 3 cash deposits (channel cash, direction credit) of
//               8,000.00 <= amount < 10,000.00 on one account, the first
//               and last at most 7 days (604,800 s) apart.
//  velocity     >= 10 transactions of any kind on one account, the first
//               and last at most 24 hours (86,400 s) apart.
//
// Clusters are found greedily per account in time order: from the earliest
// event not yet in a cluster, take every event within the window; if there
// are enough, that is one finding and the scan continues after its last
// event, otherwise it moves on by one event. Thread-safe (pure).
#ifndef AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_AML_RULES_H_
#define AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_AML_RULES_H_

#include <cstdint>
#include <string>
#include <vector>

namespace agentstream::specialists {

inline constexpr int64_t kStructuringMinCents = 800000;
inline constexpr int64_t kStructuringMaxCents = 1000000;  // Exclusive.
inline constexpr int64_t kStructuringWindowSeconds = 7 * 86400;
inline constexpr int kStructuringMinCount = 3;
inline constexpr int64_t kVelocityWindowSeconds = 86400;
inline constexpr int kVelocityMinCount = 10;

struct RuleEvent {
  int64_t id = 0;
  int64_t ts = 0;
  std::string account;
  int64_t amount_cents = 0;
};

struct RuleCluster {
  std::string account;
  std::vector<int64_t> ids;
  int64_t first_ts = 0;
  int64_t last_ts = 0;
  int64_t total_cents = 0;
};

// `events` must be sorted by (account, ts, id).
std::vector<RuleCluster> FindClusters(const std::vector<RuleEvent>& events,
                                      int64_t window_seconds, int min_count);

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_COMPLIANCE_EXPERT_AML_RULES_H_
