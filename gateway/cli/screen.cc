#include "gateway/cli/screen.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace agentstream::cli {
namespace {

using Json = nlohmann::json;

// The widest name column of the specialist lines.
constexpr int kMaxNameColumns = 28;
// Indent of a specialist's detail line, under its name.
constexpr absl::string_view kDetailIndent = "     ";

// Decodes the UTF-8 sequence at text[*i] and advances *i; -1 for an invalid
// byte (one byte is consumed).
int32_t NextCodePoint(std::string_view text, size_t* i) {
  const auto b0 = static_cast<unsigned char>(text[*i]);
  int len = b0 < 0x80         ? 1
            : (b0 >> 5) == 6  ? 2
            : (b0 >> 4) == 14 ? 3
            : (b0 >> 3) == 30 ? 4
                              : 0;
  if (len == 0 || *i + len > text.size()) {
    ++*i;
    return -1;
  }
  int32_t cp = len == 1 ? b0 : b0 & (0x7f >> len);
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[*i + k]);
    if ((b >> 6) != 2) {
      ++*i;
      return -1;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  *i += len;
  return cp;
}

int CodePointWidth(int32_t cp) {
  if ((cp >= 0x300 && cp <= 0x36f) || cp == 0x200d ||
      (cp >= 0xfe00 && cp <= 0xfe0f)) {
    return 0;
  }
  if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
      (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
      (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
      (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
      (cp >= 0x20000 && cp <= 0x3fffd)) {
    return 2;
  }
  return 1;
}

// The columns `cp` adds after a character that took `previous`: the emoji
// presentation selector (U+FE0F) makes a one-column symbol before it two
// columns wide (⚠️), as terminals draw it.
int WidthAfter(int32_t cp, int previous) {
  if (cp < 0) return 1;
  if (cp == 0xfe0f) return previous == 1 ? 1 : 0;
  return CodePointWidth(cp);
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

const SpecialistView* Find(const RunView& view, const std::string& name) {
  for (const SpecialistView& s : view.specialists) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string Label(const SpecialistView& s) {
  return Sanitize(s.icon.empty() ? s.display_name
                                 : absl::StrCat(s.icon, " ", s.display_name));
}

std::string PadTo(std::string text, int columns) {
  int width = DisplayWidth(text);
  if (width < columns) text.append(columns - width, ' ');
  return text;
}

std::string OutcomeNote(const SpecialistView& s) {
  if (s.outcome.empty()) return "";
  return absl::StrFormat("%s in %.1f s", s.outcome, s.duration_ms / 1000.0);
}

std::string DetailLine(const SpecialistView& s) {
  std::vector<std::string> parts;
  if (!s.last_tool.empty()) {
    parts.push_back(
        absl::StrCat("tool ", s.last_tool, ": ", s.last_tool_detail));
  }
  if (s.partial_results > 0) {
    parts.push_back(absl::StrCat(s.partial_results, " partial result",
                                 s.partial_results == 1 ? "" : "s",
                                 ", last: ", s.last_partial));
  }
  if (!s.errors.empty()) parts.push_back("error " + s.errors.back());
  if (!s.last_thought.empty()) parts.push_back("thinks: " + s.last_thought);
  std::string line;
  for (const std::string& p : parts) {
    if (!line.empty()) line += " | ";
    line += p;
  }
  return line;
}

}  // namespace

std::string ProgressBar(int progress, int cells) {
  progress = std::clamp(progress, 0, 100);
  const int full = progress * cells / 100;
  return absl::StrFormat("[%s%s] %3d%%", std::string(full, '#'),
                         std::string(cells - full, '.'), progress);
}

std::string Sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const int32_t cp = NextCodePoint(text, &i);
    if (cp < 0) {
      out.push_back('?');
    } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
      out.push_back(' ');
    } else {
      out.append(text.substr(start, i - start));
    }
  }
  return out;
}

int DisplayWidth(std::string_view text) {
  int width = 0;
  int last = 0;
  size_t i = 0;
  while (i < text.size()) {
    const int32_t cp = NextCodePoint(text, &i);
    last = WidthAfter(cp, last);
    width += last;
  }
  return width;
}

std::string FitWidth(std::string_view text, int columns) {
  if (DisplayWidth(text) <= columns) return std::string(text);
  const std::string_view ellipsis = "...";
  const int room = columns - static_cast<int>(ellipsis.size());
  if (room <= 0) return std::string(ellipsis.substr(0, std::max(0, columns)));
  std::string out;
  int width = 0;
  int last = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const int32_t cp = NextCodePoint(text, &i);
    last = WidthAfter(cp, last);
    if (width + last > room) break;
    width += last;
    out.append(text.substr(start, i - start));
  }
  return out + std::string(ellipsis);
}

std::vector<std::string> Wrap(std::string_view text, int columns) {
  std::vector<std::string> lines;
  columns = std::max(columns, 1);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view para = text.substr(
        pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    std::string line;
    size_t w = 0;
    while (w < para.size()) {
      size_t end = para.find(' ', w);
      if (end == std::string_view::npos) end = para.size();
      std::string word = Sanitize(para.substr(w, end - w));
      w = end + 1;
      const std::string candidate =
          line.empty() ? word : absl::StrCat(line, " ", word);
      if (DisplayWidth(candidate) <= columns) {
        line = candidate;
        continue;
      }
      if (!line.empty()) lines.push_back(line);
      line = DisplayWidth(word) <= columns ? word : FitWidth(word, columns);
    }
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return lines;
}

std::vector<std::string> ScreenLines(const RunView& view, int columns,
                                     std::string_view footer, bool final) {
  columns = std::max(columns, 20);
  std::vector<std::string> lines;
  auto add = [&](std::string_view text) {
    lines.push_back(FitWidth(Sanitize(text), columns));
  };
  std::string head = absl::StrCat(
      "agentstream  ", view.run_id.empty() ? "(starting)" : view.run_id);
  // Before the status message, which may be cut at the edge.
  if (view.resumes > 0) absl::StrAppend(&head, "  resumed x", view.resumes);
  absl::StrAppend(&head, "  ", view.status);
  if (!view.status_message.empty()) {
    absl::StrAppend(&head, ": ", view.status_message);
  }
  add(head);
  if (!view.orchestrator_thought.empty()) {
    add("Orchestrator thinks: " + view.orchestrator_thought);
  }
  int name_columns = 0;
  for (const SpecialistView& s : view.specialists) {
    name_columns = std::max(name_columns, DisplayWidth(Label(s)));
  }
  name_columns = std::min(name_columns, kMaxNameColumns);
  for (const SpecialistView& s : view.specialists) {
    std::string action = s.outcome.empty() ? s.current_action : OutcomeNote(s);
    add(absl::StrCat(PadTo(FitWidth(Label(s), name_columns), name_columns),
                     "  ", ProgressBar(s.progress), "  ", action));
    if (std::string detail = DetailLine(s); !detail.empty()) {
      add(absl::StrCat(kDetailIndent, detail));
    }
  }
  if (!view.synthesis.empty()) add("Synthesis: " + view.synthesis);
  for (const std::string& e : view.errors) add("Error " + e);
  for (const std::string& t : view.timeouts) add("Timeout " + t);
  if (!view.notice.empty()) add("Connection lost: " + view.notice);
  if (!footer.empty()) add(footer);
  if (final) {
    if (view.final_result.has_value()) {
      add(absl::StrCat("Answer (", view.outcome, "):"));
      for (std::string& line :
           Wrap(view.answer.empty() ? view.final_result->dump() : view.answer,
                columns)) {
        lines.push_back(std::move(line));
      }
    }
    if (!view.done.empty()) add("done: " + view.done);
  }
  return lines;
}

std::string TtyPainter::Paint(const std::vector<std::string>& lines) {
  std::string out;
  // Back to the first line drawn last time ("\r" then up).
  out += "\r";
  if (drawn_ > 0) absl::StrAppend(&out, "\x1b[", drawn_, "A");
  for (const std::string& line : lines) {
    absl::StrAppend(&out, "\x1b[2K", line, "\n");
  }
  out += "\x1b[J";  // Whatever the last screen had below.
  drawn_ = static_cast<int>(lines.size());
  return out;
}

std::vector<std::string> PlainLines(const RunView& view, const Json& update) {
  std::vector<std::string> lines;
  if (!update.is_object()) return lines;
  const std::string type = Str(update, "type");
  if (type == "batch") {
    auto it = update.find("updates");
    if (it != update.end() && it->is_array()) {
      for (const Json& inner : *it) {
        for (std::string& l : PlainLines(view, inner)) {
          lines.push_back(std::move(l));
        }
      }
    }
    return lines;
  }
  const std::string name = Str(update, "specialist");
  const SpecialistView* s = name.empty() ? nullptr : Find(view, name);
  const std::string who = s != nullptr ? Label(*s) : Sanitize(name);
  auto add = [&](std::string_view text) { lines.push_back(Sanitize(text)); };
  if (type == "connected") {
    if (Str(update, "status") == "resumed") {
      add(absl::StrCat("resumed run ", Str(update, "request_id"), " after seq ",
                       Str(update, "after_seq")));
    } else {
      add("run " + Str(update, "request_id"));
    }
  } else if (type == "status") {
    add(absl::StrCat("status ", Str(update, "status"), ": ",
                     Str(update, "message")));
  } else if (type == "specialist_activated" && s != nullptr) {
    add(absl::StrCat(who, ": activated: ", s->task));
  } else if (type == "progress" && s != nullptr) {
    add(absl::StrCat(who, "  ", ProgressBar(s->progress), "  ",
                     s->current_action));
  } else if (type == "thinking") {
    if (Str(update, "visible") != "false") {
      add(absl::StrCat(name.empty() ? Str(update, "agent") : who,
                       " thinks: ", Str(update, "thought")));
    }
  } else if (type == "tool_call" && s != nullptr) {
    add(absl::StrCat(who, ": tool ", s->last_tool, ": ", s->last_tool_detail));
  } else if (type == "partial_result" && s != nullptr) {
    add(absl::StrCat(who, ": partial result ", s->partial_results, ": ",
                     s->last_partial));
  } else if (type == "synthesis") {
    add("synthesis: " + Str(update, "message"));
  } else if (type == "specialist_complete" && s != nullptr) {
    add(absl::StrCat(who, ": ", OutcomeNote(*s)));
  } else if (type == "complete") {
    add(absl::StrCat("answer (", view.outcome, "):"));
    for (std::string& line :
         Wrap(view.answer.empty() ? view.final_result.value_or(Json()).dump()
                                  : view.answer,
              1 << 20)) {
      lines.push_back(std::move(line));
    }
  } else if (type == "error") {
    if (IsReconnectError(update)) {
      add("connection lost: " + Str(update, "message"));
    } else {
      add(absl::StrCat(name.empty() ? "" : who + ": ", "error ",
                       Str(update, "code"), ": ", Str(update, "message")));
    }
  } else if (type == "timeout") {
    add(absl::StrCat(name.empty() ? "" : who + ": ",
                     "timeout: ", Str(update, "message")));
  } else if (type == "done") {
    add("done: " + view.done);
  }
  return lines;
}

}  // namespace agentstream::cli
