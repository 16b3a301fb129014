#include "specialists/compliance_expert/aml_rules.h"

namespace agentstream::specialists {

std::vector<RuleCluster> FindClusters(const std::vector<RuleEvent>& events,
                                      int64_t window_seconds, int min_count) {
  std::vector<RuleCluster> out;
  size_t i = 0;
  while (i < events.size()) {
    size_t j = i;
    while (j < events.size() && events[j].account == events[i].account &&
           events[j].ts - events[i].ts <= window_seconds) {
      ++j;
    }
    if (static_cast<int>(j - i) >= min_count) {
      RuleCluster c;
      c.account = events[i].account;
      c.first_ts = events[i].ts;
      c.last_ts = events[j - 1].ts;
      for (size_t k = i; k < j; ++k) {
        c.ids.push_back(events[k].id);
        c.total_cents += events[k].amount_cents;
      }
      out.push_back(std::move(c));
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

}  // namespace agentstream::specialists
