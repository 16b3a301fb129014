// specialist_load: drives a running Synthetic specialist directly over gRPC
// (no orchestrator, no gateway) and reports what it costs the specialist.
//
//   specialist_load --port P --pid PID --calls 50 --count 4000 --size 100
//                   --form batched
//
// Opens --calls concurrent Analyze (--form single) or AnalyzeBatched
// (--form batched) calls, each asking for --count partial results of --size
// bytes at rate 0, reads them all, and prints updates/s, gRPC messages, and
// for --pid its CPU time (user + system, from /proc/PID/stat) and context
// switches (summed over /proc/PID/task/*/status) during the load. Exit
// status 0 only when every call ended OK with every update.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/update_json.h"
#include "tests/integration/process_stats.h"
#include "tests/integration/specialist_calls.h"

namespace agentstream::testing {
namespace {

struct ProcessCost {
  double cpu_seconds = 0;
  int64_t context_switches = 0;
};

ProcessCost ReadCost(int64_t pid) {
  ProcessCost cost;
  if (pid <= 0) return cost;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  // Fields after the command's closing parenthesis; utime and stime are the
  // 14th and 15th fields of the line, the 12th and 13th after ")".
  const size_t close = line.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 1; i <= 13 && rest >> field; ++i) {
      if (i == 12 || i == 13) ticks += std::stod(field);
    }
    cost.cpu_seconds = ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  const std::string task_dir = absl::StrCat("/proc/", pid, "/task");
  if (DIR* dir = opendir(task_dir.c_str()); dir != nullptr) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream status(
          absl::StrCat(task_dir, "/", entry->d_name, "/status"));
      while (std::getline(status, line)) {
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
            line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
          cost.context_switches += std::stoll(line.substr(line.find(':') + 1));
        }
      }
    }
    closedir(dir);
  }
  return cost;
}

int64_t RssKib(int64_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

int Main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int64_t port = 0;
  int64_t pid = 0;
  int64_t calls = 50;
  int64_t count = 4000;
  int64_t size = 100;
  std::string form = "batched";
  int64_t idle_runs = 0;
  double idle_rate = 0.1;
  FlagSet flags("specialist_load",
                "Drives a Synthetic specialist over gRPC and reports "
                "updates/s and its CPU cost.");
  flags.String("host", &host, "Specialist address.", "");
  flags.Int("port", &port, "Specialist gRPC port.", "");
  flags.Int("pid", &pid, "Specialist PID, for CPU and context switches.", "");
  flags.Int("calls", &calls, "Concurrent calls.", "");
  flags.Int("count", &count, "Partial results per call.", "");
  flags.Int("size", &size, "Payload bytes per partial result.", "");
  flags.String("form", &form, "batched (AnalyzeBatched) or single (Analyze).",
               "");
  flags.Int("idle-runs", &idle_runs,
            "Instead of the load: open this many slow runs (--idle-rate), "
            "wait for each one's first updates, print the RSS and threads of "
            "--pid before and with them open, cancel them.",
            "");
  flags.Double("idle-rate", &idle_rate, "Rate of the idle runs.", "");
  ParseFlagsOrExit(flags, argc, argv);
  if (port <= 0 || (form != "batched" && form != "single")) {
    std::fprintf(stderr, "need --port and --form batched|single\n");
    return 2;
  }
  auto channel = grpc::CreateChannel(absl::StrCat(host, ":", port),
                                     grpc::InsecureChannelCredentials());
  auto stub = agentstream::v1::Specialist::NewStub(channel);
  StreamCall::Options options;
  options.form = form == "single" ? StreamForm::kSingle : StreamForm::kBatched;
  options.keep_updates = false;
  options.deadline = absl::Minutes(5);
  agentstream::v1::AnalyzeRequest request;
  request.set_task("load");
  *request.mutable_options() = JsonToStruct(
      nlohmann::json{{"count", count}, {"size", size}, {"rate", 0}});

  if (idle_runs > 0) {
    request.set_task("idle");
    *request.mutable_options() = JsonToStruct(
        nlohmann::json{{"count", 100}, {"size", size}, {"rate", idle_rate}});
    options.deadline = absl::Minutes(10);
    absl::SleepFor(absl::Milliseconds(200));
    const int64_t rss_before = RssKib(pid);
    const int64_t threads_before = ThreadCount(pid);
    std::vector<std::unique_ptr<StreamCall>> idle;
    for (int64_t i = 0; i < idle_runs; ++i) {
      idle.push_back(
          std::make_unique<StreamCall>(stub.get(), request, options));
      idle.back()->Start();
    }
    int failed = 0;
    for (auto& call : idle)
      failed += !call->WaitForUpdates(2, absl::Minutes(2));
    absl::SleepFor(absl::Milliseconds(500));
    const int64_t rss = RssKib(pid);
    const int64_t threads = ThreadCount(pid);
    std::printf(
        "form=%s idle_runs=%lld threads %lld -> %lld, RSS %lld -> %lld KiB, "
        "%.1f KiB per idle run\n",
        form.c_str(), static_cast<long long>(idle_runs),
        static_cast<long long>(threads_before), static_cast<long long>(threads),
        static_cast<long long>(rss_before), static_cast<long long>(rss),
        static_cast<double>(rss - rss_before) / static_cast<double>(idle_runs));
    for (auto& call : idle) call->Cancel();
    for (auto& call : idle) call->WaitDone(absl::Seconds(30));
    return failed == 0 ? 0 : 1;
  }

  const ProcessCost before = ReadCost(pid);
  const absl::Time start = absl::Now();
  std::vector<std::unique_ptr<StreamCall>> running;
  for (int64_t i = 0; i < calls; ++i) {
    running.push_back(
        std::make_unique<StreamCall>(stub.get(), request, options));
    running.back()->Start();
  }
  int64_t updates = 0;
  int64_t messages = 0;
  int failed = 0;
  for (auto& call : running) {
    if (!call->WaitDone(absl::Minutes(5)) || !call->status().ok()) ++failed;
    updates += call->update_count();
    messages += call->message_count();
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const ProcessCost after = ReadCost(pid);
  // Each call: `count` partial results and 101 progress updates (count >
  // 100), docs/SPECIALISTS.md.
  const int64_t expected = calls * (count + (count > 100 ? 101 : count));
  std::printf(
      "form=%s calls=%lld updates=%lld (expected %lld) messages=%lld "
      "seconds=%.3f updates_per_s=%.0f\n",
      form.c_str(), static_cast<long long>(calls),
      static_cast<long long>(updates), static_cast<long long>(expected),
      static_cast<long long>(messages), seconds,
      static_cast<double>(updates) / seconds);
  if (pid > 0) {
    const double cpu = after.cpu_seconds - before.cpu_seconds;
    const int64_t switches = after.context_switches - before.context_switches;
    std::printf(
        "specialist cpu_s=%.2f cpu_us_per_update=%.2f context_switches=%lld "
        "per_1000_updates=%.1f\n",
        cpu, cpu * 1e6 / static_cast<double>(updates ? updates : 1),
        static_cast<long long>(switches),
        static_cast<double>(switches) * 1000.0 /
            static_cast<double>(updates ? updates : 1));
  }
  return failed == 0 && updates == expected ? 0 : 1;
}

}  // namespace
}  // namespace agentstream::testing

int main(int argc, char** argv) {
  return agentstream::testing::Main(argc, argv);
}
