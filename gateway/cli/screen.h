// What the terminal client prints, from its model (gateway/cli/run_view.h).
//
// On a terminal: the whole screen as lines (a status line, a line per
// specialist with a progress bar `[#####.....]  45%  Running query ...`, a
// line of its latest tool call, partial results and thought, the synthesis,
// and at the end the answer), redrawn in place by TtyPainter with ANSI
// cursor movement. Otherwise (a pipe, a file): PlainLines, append-only lines
// per update, with no escape codes at all.
//
// Text that came from the wire never carries a control character to the
// terminal (Sanitize), so a payload cannot move the cursor or change colours.
#ifndef AGENTSTREAM_GATEWAY_CLI_SCREEN_H_
#define AGENTSTREAM_GATEWAY_CLI_SCREEN_H_

#include <string>
#include <string_view>
#include <vector>

#include "gateway/cli/run_view.h"
#include "nlohmann/json.hpp"

namespace agentstream::cli {

// Cells of the progress bar between its brackets.
inline constexpr int kBarCells = 20;

// `[#########...........]  45%`: the bar and the percentage, 3 digits wide.
std::string ProgressBar(int progress, int cells = kBarCells);

// Control characters (C0, DEL, C1; a newline or tab too) become spaces;
// invalid UTF-8 bytes become '?'.
std::string Sanitize(std::string_view text);

// Terminal columns of UTF-8 text: East Asian wide characters and emoji take
// two, combining marks and variation selectors none.
int DisplayWidth(std::string_view text);

// The longest prefix of `text` that fits `columns`, with "..." when cut.
std::string FitWidth(std::string_view text, int columns);

// `text` wrapped at spaces to lines of at most `columns` (a longer word is
// cut); its own newlines are kept as line breaks.
std::vector<std::string> Wrap(std::string_view text, int columns);

// The screen on a terminal `columns` wide: every line fits it (so the
// painter's line count is the terminal's). `footer` is the client's own
// notice (reconnecting, the cancel), or empty. With `final`, the answer
// follows in full.
std::vector<std::string> ScreenLines(const RunView& view, int columns,
                                     std::string_view footer, bool final);

// Redraws a screen of lines in place: each Paint moves the cursor back to
// the first line it drew last time and rewrites every line, clearing what
// the previous screen had below. Not thread-safe.
class TtyPainter final {
 public:
  // The bytes to write to the terminal.
  std::string Paint(const std::vector<std::string>& lines);
  // Forgets the last screen (after something else was printed below it,
  // such as the cancel prompt): the next Paint starts at the cursor.
  void Detach() { drawn_ = 0; }

 private:
  int drawn_ = 0;
};

// Append-only lines for one update that Reduce folded in (`view` is the
// state after it). Nothing for heartbeats and repeats.
std::vector<std::string> PlainLines(const RunView& view,
                                    const nlohmann::json& update);

}  // namespace agentstream::cli

#endif  // AGENTSTREAM_GATEWAY_CLI_SCREEN_H_
