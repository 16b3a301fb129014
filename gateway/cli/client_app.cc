#include "gateway/cli/client_app.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/cli/gateway_http.h"
#include "gateway/cli/screen.h"
#include "gateway/cli/stream_follower.h"
#include "gateway/cli/terminal.h"
#include "nlohmann/json.hpp"

namespace agentstream::cli {
namespace {

using Json = nlohmann::json;

// Redraws at most this often on a terminal (updates come faster), and
// looks for a Ctrl-C as often.
constexpr absl::Duration kRepaintInterval = absl::Milliseconds(80);

enum class Mode { kTty, kPlain, kJson };

void WriteOut(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void WriteErr(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

// One --json line: the update as it came when it is one line (the gateway
// sends compact JSON), else re-serialised; a batch's updates one by one.
void PrintJson(const Json& update, std::string_view raw) {
  if (update.value("type", "") == "batch" && update.contains("updates") &&
      update["updates"].is_array()) {
    for (const Json& inner : update["updates"]) WriteOut(inner.dump() + "\n");
    return;
  }
  if (raw.find('\n') == std::string_view::npos) {
    WriteOut(std::string(raw) + "\n");
  } else {
    WriteOut(update.dump() + "\n");
  }
}

class App {
 public:
  explicit App(const CliOptions& options)
      : options_(options),
        mode_(options.json            ? Mode::kJson
              : isatty(STDOUT_FILENO) ? Mode::kTty
                                      : Mode::kPlain),
        ask_(isatty(STDIN_FILENO) != 0),
        http_(options),
        follower_(options) {}

  int Run() {
    InstallSigintHandler();
    // Only this thread takes SIGINT, so that the answer's read() is the one
    // it interrupts.
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, nullptr);
    std::thread streamer([this] { Follow(); });
    pthread_sigmask(SIG_UNBLOCK, &block, nullptr);

    int handled_sigints = 0;
    std::optional<int> exit_code;
    while (true) {
      {
        // Wakes for the end, else every kRepaintInterval: a Ctrl-C is seen
        // within that, and the screen is redrawn at most that often.
        absl::MutexLock lock(&mu_);
        auto finished = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return finished_;
        };
        if (mu_.AwaitWithTimeout(absl::Condition(&finished),
                                 kRepaintInterval)) {
          break;
        }
      }
      if (SigintCount() > handled_sigints) {
        handled_sigints = SigintCount();
        exit_code = OnInterrupt();
        if (exit_code.has_value()) break;
        handled_sigints = SigintCount();
      }
      Paint(/*final=*/false);
    }
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    http_.Stop();
    streamer.join();
    Paint(/*final=*/true);
    absl::MutexLock lock(&mu_);
    if (!give_up_.empty()) WriteErr("agentstream: " + give_up_ + "\n");
    return exit_code.value_or(follower_.ExitCode());
  }

 private:
  // The stream thread: the POST, then resumes until the run's end.
  void Follow() {
    Json body = {{"message", options_.message}};
    if (!options_.specialists.empty()) {
      body["specialists"] = options_.specialists;
    }
    std::string method = "POST";
    std::string path = "/api/chat/stream";
    std::string json_body = body.dump();
    std::map<std::string, std::string> headers;
    while (true) {
      HttpAnswer answer = http_.Stream(
          method, path, json_body, headers,
          [this](const HttpAnswer& head) {
            absl::MutexLock lock(&mu_);
            follower_.OnResponse(head.status, head.request_id,
                                 head.retry_after_s);
          },
          [this](std::string_view bytes) {
            absl::MutexLock lock(&mu_);
            follower_.OnBytes(
                bytes,
                [this](const Json& u, std::string_view raw) { Show(u, raw); });
            dirty_ = true;
          });
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      NextStep step = follower_.OnConnectionEnd(answer.error, answer.body);
      if (step.kind == NextStep::Kind::kFinished) break;
      if (step.kind == NextStep::Kind::kGiveUp) {
        give_up_ = step.reason;
        break;
      }
      footer_ =
          absl::StrCat("Connection lost (", step.reason, "); resuming in ",
                       absl::FormatDuration(step.delay), " (attempt ",
                       step.attempt, " of ", options_.max_reconnects, ")");
      if (mode_ == Mode::kPlain) WriteOut(Sanitize(footer_) + "\n");
      dirty_ = true;
      auto stop = [this]()
                      ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), step.delay)) break;
      footer_.clear();
      method = "GET";
      path = follower_.ResumePath();
      json_body.clear();
      headers = {{"Last-Event-ID", follower_.last_event_id()}};
    }
    absl::MutexLock lock(&mu_);
    finished_ = true;
  }

  void Show(const Json& update, std::string_view raw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (mode_ == Mode::kJson) {
      PrintJson(update, raw);
    } else if (mode_ == Mode::kPlain) {
      for (const std::string& line : PlainLines(follower_.view(), update)) {
        WriteOut(line + "\n");
      }
    }
  }

  void Paint(bool final) {
    if (mode_ != Mode::kTty) return;
    absl::MutexLock lock(&mu_);
    if (!dirty_ && !final) return;
    dirty_ = false;
    std::vector<std::string> lines = ScreenLines(
        follower_.view(), TerminalColumns(STDOUT_FILENO), footer_, final);
    // Cursor movement cannot reach above the terminal's top: a live screen
    // keeps below its height (the final one may scroll).
    const size_t rows = static_cast<size_t>(TerminalRows(STDOUT_FILENO));
    if (!final && lines.size() >= rows) lines.resize(rows - 1);
    WriteOut(painter_.Paint(lines));
  }

  // A Ctrl-C: asks (each time; a second one while asking is the "cancel
  // now"), cancels, or not. Returns the exit code when the client is to exit
  // now.
  std::optional<int> OnInterrupt() {
    std::string run_id;
    {
      absl::MutexLock lock(&mu_);
      run_id = follower_.view().run_id;
    }
    if (run_id.empty()) {
      WriteErr("agentstream: interrupted before the run started\n");
      return kExitCancelled;
    }
    if (ask_) {
      Paint(/*final=*/false);
      {
        absl::MutexLock lock(&mu_);
        painter_.Detach();
      }
      const Answer answer = AskYesNo("Cancel the run? [y/N] ");
      if (answer == Answer::kInterrupted) {
        // A second Ctrl-C while asking: cancel and go at once.
        Cancel(run_id);
        return kExitCancelled;
      }
      if (answer == Answer::kNo) {
        absl::MutexLock lock(&mu_);
        dirty_ = true;
        return std::nullopt;
      }
    }
    if (!ask_) WriteErr("agentstream: cancelling run " + run_id + "\n");
    if (!Cancel(run_id)) return std::nullopt;
    // Wait (bounded) for the stream to end with `done cancelled`.
    absl::MutexLock lock(&mu_);
    footer_ = "Cancelling the run...";
    dirty_ = true;
    auto finished = [this]()
                        ABSL_SHARED_LOCKS_REQUIRED(mu_) { return finished_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&finished),
                              options_.cancel_wait)) {
      give_up_ = "the cancelled run's stream did not end in time";
      stopping_ = true;
      return kExitCancelled;
    }
    footer_.clear();
    // It may have completed before the cancel reached it.
    return follower_.ExitCode() == kExitComplete ? kExitComplete
                                                 : kExitCancelled;
  }

  // DELETE /api/runs/{id}: true when the run is cancelled or over.
  bool Cancel(const std::string& run_id) {
    HttpAnswer answer = http_.Delete("/api/runs/" + run_id);
    if (answer.status == 202) return true;
    if (answer.status == 409) {
      WriteErr("agentstream: the run had already ended\n");
      return true;
    }
    WriteErr(absl::StrCat(
        "agentstream: the cancel failed: ",
        answer.status == 0
            ? answer.error
            : absl::StrCat("HTTP ", answer.status, " ", Sanitize(answer.body)),
        "\n"));
    return false;
  }

  const CliOptions options_;
  const Mode mode_;
  const bool ask_;  // Whether a Ctrl-C asks before it cancels.
  GatewayHttp http_;
  TtyPainter painter_;  // Used by the main thread only.
  absl::Mutex mu_;
  StreamFollower follower_ ABSL_GUARDED_BY(mu_);
  std::string footer_ ABSL_GUARDED_BY(mu_);
  std::string give_up_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = true;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

int RunClient(const CliOptions& options) { return App(options).Run(); }

}  // namespace agentstream::cli
