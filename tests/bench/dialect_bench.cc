// dialect_bench: what rendering a run costs in each wire dialect
// (docs/BENCHMARKS.md, "Dialects"), side by side in one process: the same
// runs' updates through our own wire (ChatStreamEncoder) and every dialect's
// encoder (gateway/dialects/, docs/PROTOCOLS.md), a new encoder per run as
// the gateway makes one per stream. Prints, per encoder, the median over
// the repetitions of the time per update and the bytes per update.
//
//   dialect_bench [--runs N] [--reps R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/update_json.h"
#include "gateway/chat_stream.h"
#include "gateway/dialects/a2a_encoder.h"
#include "gateway/dialects/ag_ui_encoder.h"
#include "gateway/dialects/ai_sdk_encoder.h"

namespace {

using agentstream::v1::Update;
namespace gw = agentstream::gateway;
namespace dialects = agentstream::gateway::dialects;

// One run's updates: three specialists, each activated, 20 progress
// updates, 2 thoughts, 2 tool calls each followed by a partial result of
// ~256 bytes, 5 more partial results and its end; then the answer.
std::vector<Update> MakeRun(const std::string& rid) {
  std::vector<Update> run;
  uint64_t seq = 0;
  auto next = [&](const std::string& specialist) -> Update& {
    Update& u = run.emplace_back();
    u.set_request_id(rid);
    u.set_seq(++seq);
    u.set_specialist(specialist);
    return u;
  };
  next("").mutable_status()->set_status(agentstream::v1::RUN_STATUS_ANALYZING);
  next("").mutable_status()->set_status(agentstream::v1::RUN_STATUS_DELEGATING);
  const std::string payload(200, 'x');
  for (const char* name : {"DataAnalyst", "RiskAnalyst", "ComplianceExpert"}) {
    auto* a = next(name).mutable_specialist_activated();
    a->set_task("Assess account ACC-1042");
    a->set_display_name(name);
    a->set_icon("📊");
  }
  for (int i = 0; i < 20; ++i) {
    for (const char* name :
         {"DataAnalyst", "RiskAnalyst", "ComplianceExpert"}) {
      auto* p = next(name).mutable_progress();
      p->set_progress(i * 5);
      p->set_current_action(absl::StrCat("Running step ", i));
      if (i % 10 == 3) {
        auto* t = next(name).mutable_thinking();
        t->set_agent(name);
        t->set_thought("The outflow rises every month; checking the peers.");
      }
      if (i % 10 == 5) {
        auto* c = next(name).mutable_tool_call();
        c->set_tool("data_query");
        *c->mutable_parameters() = agentstream::JsonToStruct(
            {{"query", "totals"}, {"sql", "SELECT SUM(amount) FROM t"}});
      }
      if (i % 3 == 2 || i % 10 == 6) {
        *next(name).mutable_partial_result()->mutable_result() =
            agentstream::JsonToStruct({{"query", absl::StrCat("q", i)},
                                       {"rows", i},
                                       {"note", payload}});
      }
    }
  }
  for (const char* name : {"DataAnalyst", "RiskAnalyst", "ComplianceExpert"}) {
    next(name).mutable_progress()->set_progress(100);
    next(name).mutable_specialist_complete()->set_outcome(
        agentstream::v1::OUTCOME_OK);
  }
  next("").mutable_status()->set_status(
      agentstream::v1::RUN_STATUS_SYNTHESIZING);
  auto* c = next("").mutable_complete();
  c->set_outcome(agentstream::v1::OUTCOME_OK);
  *c->mutable_result() =
      agentstream::JsonToStruct({{"answer", std::string(600, 'a')},
                                 {"missing", nlohmann::json::array()}});
  return run;
}

struct Encoder {
  std::string name;
  std::function<std::unique_ptr<gw::StreamEncoder>(const std::string&)> make;
};

struct Figure {
  double ns_per_update = 0;
  double bytes_per_update = 0;
};

Figure Measure(const Encoder& e, const std::vector<std::vector<Update>>& runs) {
  size_t updates = 0;
  size_t bytes = 0;
  std::string out;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& run : runs) {
    std::unique_ptr<gw::StreamEncoder> encoder = e.make(run[0].request_id());
    out = encoder->Open();
    for (const Update& u : run) {
      encoder->AppendUpdate(u, &out);
      if (encoder->batch_due()) encoder->FlushBatch(&out);
    }
    encoder->FlushBatch(&out);
    out += encoder->Done(gw::DoneStatus::kComplete);
    bytes += out.size();
    out.clear();
    updates += run.size();
  }
  const double ns = std::chrono::duration<double, std::nano>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  return {ns / static_cast<double>(updates),
          static_cast<double>(bytes) / static_cast<double>(updates)};
}

}  // namespace

int main(int argc, char** argv) {
  int runs_n = 2000;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--runs") runs_n = std::atoi(argv[i + 1]);
    if (flag == "--reps") reps = std::atoi(argv[i + 1]);
  }
  std::vector<std::vector<Update>> runs;
  for (int i = 0; i < runs_n; ++i)
    runs.push_back(MakeRun(absl::StrCat("run_", i)));

  const std::vector<Encoder> encoders = {
      {"ours (SSE JSON)",
       [](const std::string& rid) {
         return std::make_unique<gw::ChatStreamEncoder>(rid, gw::StreamFormat(),
                                                        3000);
       }},
      {"ours, batched 5/100 ms",
       [](const std::string& rid) {
         gw::StreamFormat f;
         f.batch.max_updates = 5;
         return std::make_unique<gw::ChatStreamEncoder>(rid, f, 3000);
       }},
      {"AG-UI (SSE)",
       [](const std::string& rid) {
         return std::make_unique<dialects::AgUiEncoder>(
             rid, dialects::AgUiRunNames{"t", "r"},
             dialects::AgUiFraming::kSse);
       }},
      {"AG-UI (protobuf)",
       [](const std::string& rid) {
         return std::make_unique<dialects::AgUiEncoder>(
             rid, dialects::AgUiRunNames{"t", "r"},
             dialects::AgUiFraming::kProto);
       }},
      {"AI SDK UI stream",
       [](const std::string& rid) {
         return std::make_unique<dialects::AiSdkEncoder>(rid);
       }},
      {"A2A v1.0",
       [](const std::string& rid) {
         return std::make_unique<dialects::A2aEncoder>(
             rid, "ctx", dialects::A2aVersion::kV1, dialects::Json(1));
       }},
  };
  std::printf(
      "dialect_bench: %d runs of %zu updates, %d repetitions, medians\n",
      runs_n, runs[0].size(), reps);
  std::printf("%-24s %12s %12s %10s\n", "encoder", "ns/update", "bytes/update",
              "x ours");
  double ours = 0;
  for (const Encoder& e : encoders) {
    std::vector<Figure> figures;
    for (int r = 0; r < reps; ++r) figures.push_back(Measure(e, runs));
    std::sort(figures.begin(), figures.end(),
              [](const Figure& a, const Figure& b) {
                return a.ns_per_update < b.ns_per_update;
              });
    const Figure median = figures[figures.size() / 2];
    if (ours == 0) ours = median.ns_per_update;
    std::printf("%-24s %12.0f %12.0f %10.2f\n", e.name.c_str(),
                median.ns_per_update, median.bytes_per_update,
                median.ns_per_update / ours);
  }
  return 0;
}
