#include "gateway/replay/recording.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gateway/resume.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::replay {
namespace {

constexpr std::string_view kQuestionComment = "question:";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s[0]))) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

// One event block as the WHATWG event-stream parser reads it.
struct Block {
  std::string event;
  std::string data;
  bool has_data = false;
  std::string id;
  bool has_id = false;
};

// The update's `type` and `emitted_at_ns` (a batch: its last update's).
void ReadPayload(std::string_view data, RecordedEvent* out) {
  const nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_object()) return;
  if (auto t = j.find("type"); t != j.end() && t->is_string()) {
    out->type = t->get<std::string>();
  }
  const nlohmann::json* update = &j;
  if (auto u = j.find("updates");
      u != j.end() && u->is_array() && !u->empty()) {
    update = &u->back();
  }
  if (!update->is_object()) return;
  if (auto at = update->find("emitted_at_ns");
      at != update->end() && at->is_number_integer()) {
    const int64_t ns = at->get<int64_t>();
    if (ns > 0) out->emitted_at_ns = ns;
  }
}

class Parser {
 public:
  absl::Status Line(std::string_view line) {
    if (line.empty()) return Dispatch();
    if (line[0] == ':') {
      const std::string_view comment = Trim(line.substr(1));
      if (comment.substr(0, kQuestionComment.size()) == kQuestionComment) {
        rec_.question =
            std::string(Trim(comment.substr(kQuestionComment.size())));
      }
      return absl::OkStatus();
    }
    const size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "event") {
      block_.event = std::string(value);
    } else if (field == "data") {
      if (block_.has_data) block_.data.push_back('\n');
      block_.data.append(value);
      block_.has_data = true;
    } else if (field == "id") {
      block_.id = std::string(value);
      block_.has_id = true;
    }  // `retry` and unknown fields: nothing to keep.
    return absl::OkStatus();
  }

  absl::StatusOr<Recording> Finish() {
    if (absl::Status s = Dispatch(); !s.ok()) return s;
    if (rec_.updates == 0) {
      return absl::InvalidArgumentError(
          "the recording holds no update (no `id: <request_id>:<seq>` "
          "event): is it a stream of the gateway?");
    }
    return std::move(rec_);
  }

 private:
  absl::Status Dispatch() {
    Block block = std::move(block_);
    block_ = Block{};
    if (!block.has_data && !block.has_id) return absl::OkStatus();
    RecordedEvent ev;
    ev.event = block.event.empty() ? "message" : block.event;
    ev.data = std::move(block.data);
    if (block.has_id && !block.id.empty()) {
      auto point = ParseLastEventId(block.id);
      if (!point.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "event ", events_seen_, ": ", point.status().message()));
      }
      if (rec_.request_id.empty()) {
        rec_.request_id = point->request_id;
      } else if (point->request_id != rec_.request_id) {
        return absl::InvalidArgumentError(
            absl::StrCat("event ", events_seen_, ": id of run ",
                         point->request_id, " in a recording of run ",
                         rec_.request_id, " (one run per recording)"));
      }
      const bool connected = ev.event == "connected";
      // Updates start at seq 1 and go up; a `connected` names the point a
      // recorded resume started after.
      if (!connected && point->after_seq <= anchor_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "event ", events_seen_, ": seq ", point->after_seq, " after seq ",
            anchor_, " (seqs must increase from 1)"));
      }
      anchor_ = std::max(anchor_, point->after_seq);
      ++events_seen_;
      // The recorded `connected` is the server's to send again.
      if (connected) return absl::OkStatus();
      ev.has_id = true;
      ev.seq = point->after_seq;
      ReadPayload(ev.data, &ev);
      rec_.last_seq = ev.seq;
      ++rec_.updates;
    } else {
      ++events_seen_;
      if (ev.event == "connected" || !block.has_data) return absl::OkStatus();
      ev.seq = anchor_;
    }
    rec_.events.push_back(std::move(ev));
    return absl::OkStatus();
  }

  Recording rec_;
  Block block_;
  uint64_t anchor_ = 0;
  size_t events_seen_ = 0;
};

}  // namespace

absl::StatusOr<Recording> ParseRecording(std::string_view text) {
  if (text.size() > kMaxRecordingBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the recording has ", text.size(), " bytes, more than ",
                     kMaxRecordingBytes));
  }
  Parser parser;
  size_t start = 0;
  while (start < text.size()) {
    // CRLF, CR and LF all end a line.
    const size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) {
      if (absl::Status s = parser.Line(text.substr(start)); !s.ok()) return s;
      break;
    }
    if (absl::Status s = parser.Line(text.substr(start, end - start));
        !s.ok()) {
      return s;
    }
    start = end + 1;
    if (text[end] == '\r' && start < text.size() && text[start] == '\n') {
      ++start;
    }
  }
  return parser.Finish();
}

RecordingLibrary::RecordingLibrary(std::vector<Recording> recordings) {
  for (Recording& r : recordings) {
    if (Find(r.request_id) != nullptr) {
      skipped_.push_back(absl::StrCat(r.source, ": run ", r.request_id,
                                      " is already served by another file"));
      continue;
    }
    recordings_.push_back(std::move(r));
  }
}

absl::StatusOr<std::unique_ptr<RecordingLibrary>> RecordingLibrary::Load(
    const std::string& dir, size_t max_recordings, size_t max_bytes,
    size_t max_total_bytes) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot read the directory ", dir));
  }
  std::vector<std::string> names;
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name.empty() || name[0] == '.' || name.size() < 5 ||
        name.substr(name.size() - 4) != ".sse") {
      continue;
    }
    names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  if (names.size() > max_recordings) {
    return absl::ResourceExhaustedError(
        absl::StrCat(dir, " holds ", names.size(), " recordings (*.sse), more ",
                     "than ", max_recordings));
  }
  std::vector<Recording> parsed;
  std::vector<std::string> skipped;
  size_t total = 0;
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(dir, "/", name);
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      skipped.push_back(absl::StrCat(name, ": not a regular file"));
      continue;
    }
    if (static_cast<size_t>(st.st_size) > max_bytes) {
      skipped.push_back(absl::StrCat(name, ": ", st.st_size,
                                     " bytes, more than ", max_bytes));
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    std::string text;
    // Read at most one byte past the bound: a file that grew is refused.
    text.resize(max_bytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      skipped.push_back(
          absl::StrCat(name, ": more than ", max_bytes, " bytes"));
      continue;
    }
    auto rec = ParseRecording(text);
    if (!rec.ok()) {
      skipped.push_back(absl::StrCat(name, ": ", rec.status().message()));
      continue;
    }
    total += text.size();
    if (total > max_total_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the recordings in ", dir, " hold more than ",
                       max_total_bytes, " bytes together"));
    }
    rec->source = name;
    parsed.push_back(*std::move(rec));
  }
  auto library = std::make_unique<RecordingLibrary>(std::move(parsed));
  library->skipped_.insert(library->skipped_.begin(), skipped.begin(),
                           skipped.end());
  if (library->recordings_.empty()) {
    std::string why;
    for (const std::string& s : library->skipped_)
      absl::StrAppend(&why, "; ", s);
    return absl::InvalidArgumentError(
        absl::StrCat("no valid recording (*.sse) in ", dir, why));
  }
  return library;
}

const Recording* RecordingLibrary::Find(std::string_view request_id) const {
  for (const Recording& r : recordings_) {
    if (r.request_id == request_id) return &r;
  }
  return nullptr;
}

const Recording* RecordingLibrary::ForQuestion(std::string_view message) {
  if (recordings_.empty()) return nullptr;
  const std::string_view wanted = Trim(message);
  for (const Recording& r : recordings_) {
    if (!r.question.empty() && Trim(r.question) == wanted) return &r;
  }
  absl::MutexLock lock(&mu_);
  const Recording* r = &recordings_[next_ % recordings_.size()];
  ++next_;
  return r;
}

}  // namespace agentstream::gateway::replay
