#include "orchestrator/specialist_registry.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace agentstream::orchestrator {

using agentstream::v1::SpecialistCard;

absl::StatusOr<std::vector<SpecialistEndpoint>> ParseSpecialistFlags(
    const std::vector<std::string>& values) {
  std::vector<SpecialistEndpoint> out;
  std::set<std::string> seen;
  for (const std::string& value : values) {
    bool continues = false;  // out.back() came from this value.
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (part.empty()) continue;
      if (!absl::StrContains(part, '=') && continues) {
        // The next address of a multi-address target such as
        // "ipv4:127.0.0.1:1,127.0.0.1:2" (gRPC round-robin over replicas).
        absl::StrAppend(&out.back().address, ",", part);
        continue;
      }
      std::pair<std::string, std::string> kv =
          absl::StrSplit(part, absl::MaxSplits('=', 1));
      std::string name(absl::StripAsciiWhitespace(kv.first));
      std::string address(absl::StripAsciiWhitespace(kv.second));
      if (name.empty() || address.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--specialist wants NAME=ADDRESS, got \"", part, "\""));
      }
      if (!seen.insert(absl::AsciiStrToLower(name)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("specialist \"", name, "\" is given twice"));
      }
      out.push_back({std::move(name), std::move(address)});
      continues = true;
    }
  }
  return out;
}

SpecialistRegistry::SpecialistRegistry(
    std::vector<SpecialistEndpoint> endpoints, SpecialistClientFactory factory,
    Options options)
    : options_(options) {
  absl::MutexLock lock(&mu_);
  for (SpecialistEndpoint& e : endpoints) {
    Entry entry;
    entry.client = factory(e.address);
    entry.card.set_name(e.name);
    entry.endpoint = std::move(e);
    entries_.push_back(std::move(entry));
  }
}

SpecialistRegistry::~SpecialistRegistry() { Stop(); }

void SpecialistRegistry::Start() {
  RefreshOnce(/*all=*/true);
  thread_ = std::thread([this] { Loop(); });
}

void SpecialistRegistry::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SpecialistRegistry::Loop() {
  absl::Time last_full = absl::Now();
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    auto stopping = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping),
                             options_.retry_interval)) {
      break;
    }
    const bool all = absl::Now() - last_full >= options_.refresh_interval;
    if (all) last_full = absl::Now();
    mu_.Unlock();
    RefreshOnce(all);
    mu_.Lock();
  }
}

void SpecialistRegistry::RefreshOnce(bool all) {
  struct Job {
    size_t index;
    std::string name;
    std::shared_ptr<SpecialistClient> client;
    absl::StatusOr<SpecialistCard> result;
  };
  std::vector<Job> jobs;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (all || !entries_[i].available) {
        jobs.push_back({i, entries_[i].endpoint.name, entries_[i].client,
                        absl::UnknownError("not asked")});
      }
    }
  }
  std::vector<std::thread> threads;
  threads.reserve(jobs.size());
  for (Job& job : jobs) {
    threads.emplace_back([&job, timeout = options_.describe_timeout] {
      job.result = job.client->Describe(timeout);
    });
  }
  for (std::thread& t : threads) t.join();

  absl::MutexLock lock(&mu_);
  for (Job& job : jobs) {
    Entry& entry = entries_[job.index];
    if (job.result.ok()) {
      SpecialistCard card = *std::move(job.result);
      if (card.name() != entry.endpoint.name) {
        AS_LOG(WARNING) << "specialist at " << entry.endpoint.address
                        << " calls itself \"" << card.name()
                        << "\"; configured as \"" << entry.endpoint.name
                        << "\"";
        card.set_name(entry.endpoint.name);
      }
      if (!entry.available) {
        AS_LOG(INFO) << "specialist " << entry.endpoint.name << " at "
                     << entry.endpoint.address << " is available ("
                     << card.instance() << ")";
      }
      entry.card = std::move(card);
      entry.available = true;
    } else {
      if (entry.available) {
        AS_LOG(WARNING) << "specialist " << entry.endpoint.name << " at "
                        << entry.endpoint.address << " is no longer reachable: "
                        << job.result.status().ToString();
      } else {
        AS_LOG(DEBUG) << "specialist " << entry.endpoint.name
                      << " not reachable yet: "
                      << job.result.status().ToString();
      }
      entry.available = false;
    }
  }
}

std::vector<SpecialistCard> SpecialistRegistry::PlanningCards() const {
  absl::MutexLock lock(&mu_);
  std::vector<SpecialistCard> cards;
  for (const Entry& entry : entries_) {
    if (entry.available) {
      cards.push_back(entry.card);
    } else {
      SpecialistCard bare;
      bare.set_name(entry.endpoint.name);
      bare.set_display_name(entry.card.display_name().empty()
                                ? entry.endpoint.name
                                : entry.card.display_name());
      bare.set_icon(entry.card.icon());
      bare.set_explicit_only(true);
      cards.push_back(std::move(bare));
    }
  }
  return cards;
}

std::shared_ptr<SpecialistClient> SpecialistRegistry::Client(
    const std::string& name) const {
  absl::MutexLock lock(&mu_);
  for (const Entry& entry : entries_) {
    if (entry.endpoint.name == name) return entry.client;
  }
  return nullptr;
}

agentstream::v1::ListSpecialistsResponse SpecialistRegistry::List() const {
  absl::MutexLock lock(&mu_);
  agentstream::v1::ListSpecialistsResponse response;
  for (const Entry& entry : entries_) {
    auto* info = response.add_specialists();
    *info->mutable_card() = entry.card;
    info->set_address(entry.endpoint.address);
    info->set_available(entry.available);
  }
  return response;
}

size_t SpecialistRegistry::available_count() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const Entry& entry : entries_) n += entry.available ? 1 : 0;
  return n;
}

}  // namespace agentstream::orchestrator
