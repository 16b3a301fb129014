#include "gateway/cli/screen.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentstream::cli {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

RunView SampleRun() {
  RunView view;
  for (const Json& u : std::vector<Json>{
           {{"type", "connected"}, {"request_id", "run_7"}},
           {{"type", "status"},
            {"seq", 1},
            {"status", "delegating"},
            {"message", "Delegating"}},
           {{"type", "specialist_activated"},
            {"seq", 2},
            {"specialist", "DataAnalyst"},
            {"display_name", "Data Analyst"},
            {"icon", "\xF0\x9F\x93\x8A"}},
           {{"type", "progress"},
            {"seq", 3},
            {"specialist", "DataAnalyst"},
            {"progress", 45},
            {"current_action", "Running query"}},
           {{"type", "tool_call"},
            {"seq", 4},
            {"specialist", "DataAnalyst"},
            {"tool", "data_query"},
            {"parameters", {{"sql", "SELECT 1"}}}},
       }) {
    Reduce(view, u);
  }
  return view;
}

TEST(ScreenTest, ProgressBar) {
  EXPECT_EQ(ProgressBar(45), "[#########...........]  45%");
  EXPECT_EQ(ProgressBar(100), "[####################] 100%");
  EXPECT_EQ(ProgressBar(-3, 4), "[....]   0%");
}

TEST(ScreenTest, ControlCharactersFromTheWireNeverReachTheTerminal) {
  EXPECT_EQ(Sanitize("a\x1b[2Jb\nc\td\x7f"), "a [2Jb c d ");
  EXPECT_EQ(Sanitize("\xC2\x9B"
                     "x"),
            " x");                         // C1 CSI.
  EXPECT_EQ(Sanitize("\xFF ok"), "? ok");  // Not UTF-8.
  EXPECT_EQ(Sanitize("caf\xC3\xA9"), "caf\xC3\xA9");
}

TEST(ScreenTest, DisplayWidthCountsWideCharacters) {
  EXPECT_EQ(DisplayWidth("abc"), 3);
  EXPECT_EQ(DisplayWidth("\xF0\x9F\x93\x8A"), 2);          // U+1F4CA
  EXPECT_EQ(DisplayWidth("\xE2\x9A\xA0\xEF\xB8\x8F"), 2);  // U+26A0 U+FE0F
  EXPECT_EQ(DisplayWidth("e\xCC\x81"), 1);                 // e + combining.
  EXPECT_EQ(DisplayWidth("\xE4\xB8\xAD"), 2);              // U+4E2D
}

TEST(ScreenTest, FitWidthAndWrap) {
  EXPECT_EQ(FitWidth("abcdef", 6), "abcdef");
  EXPECT_EQ(FitWidth("abcdefg", 6), "abc...");
  EXPECT_EQ(FitWidth("\xF0\x9F\x93\x8A\xF0\x9F\x93\x8A\xF0\x9F\x93\x8A", 5),
            "\xF0\x9F\x93\x8A...");
  EXPECT_EQ(FitWidth("abcdef", 2), "..");
  EXPECT_EQ(FitWidth("\xF0\x9F\x93\x8A\xF0\x9F\x93\x8A\xF0\x9F\x93\x8A", 6),
            "\xF0\x9F\x93\x8A\xF0\x9F\x93\x8A\xF0\x9F\x93\x8A");
  EXPECT_THAT(Wrap("one two three four", 9),
              ::testing::ElementsAre("one two", "three", "four"));
  EXPECT_THAT(Wrap("a\nb", 9), ::testing::ElementsAre("a", "b"));
  EXPECT_THAT(Wrap("abcdefghijkl", 6), ::testing::ElementsAre("abc..."));
}

TEST(ScreenTest, ALinePerSpecialistWithItsBarAndAction) {
  RunView view = SampleRun();
  std::vector<std::string> lines = ScreenLines(view, 100, "", false);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("run_7"));
  EXPECT_THAT(lines[0], HasSubstr("delegating: Delegating"));
  EXPECT_EQ(lines[1],
            "\xF0\x9F\x93\x8A Data Analyst  [#########...........]  45%  "
            "Running query");
  EXPECT_THAT(lines[2], HasSubstr("tool data_query: SELECT 1"));
  for (const std::string& line : ScreenLines(view, 30, "footer", true)) {
    EXPECT_LE(DisplayWidth(line), 30) << line;
  }
  Reduce(view, {{"type", "complete"},
                {"seq", 9},
                {"outcome", "ok"},
                {"result", {{"answer", "The answer."}}}});
  Reduce(view, {{"type", "done"}, {"status", "complete"}});
  lines = ScreenLines(view, 100, "", true);
  EXPECT_THAT(lines, ::testing::Contains("The answer."));
  EXPECT_EQ(lines.back(), "done: complete");
  // The answer is the final screen's only: live screens stay short.
  EXPECT_THAT(ScreenLines(view, 100, "", false),
              ::testing::Not(::testing::Contains("The answer.")));
}

TEST(ScreenTest, ThePainterRedrawsInPlace) {
  TtyPainter painter;
  EXPECT_EQ(painter.Paint({"a", "b"}), "\r\x1b[2Ka\n\x1b[2Kb\n\x1b[J");
  EXPECT_EQ(painter.Paint({"c"}), "\r\x1b[2A\x1b[2Kc\n\x1b[J");
  painter.Detach();
  EXPECT_EQ(painter.Paint({"d"}), "\r\x1b[2Kd\n\x1b[J");
}

TEST(ScreenTest, PlainLinesHaveNoEscapeCodes) {
  RunView view;
  const std::vector<Json> updates = {
      {{"type", "connected"}, {"request_id", "run_7"}},
      {{"type", "progress"},
       {"seq", 1},
       {"specialist", "A"},
       {"progress", 50},
       {"current_action", "half \x1b[31mred"}},
      {{"type", "complete"},
       {"seq", 2},
       {"result", {{"answer", "line1\nline2"}}}},
      {{"type", "done"}, {"status", "complete"}},
  };
  std::vector<std::string> all;
  for (const Json& u : updates) {
    ASSERT_TRUE(Reduce(view, u));
    for (std::string& l : PlainLines(view, u)) all.push_back(std::move(l));
  }
  EXPECT_THAT(all,
              ::testing::ElementsAre(
                  "run run_7", "A  [##########..........]  50%  half  [31mred",
                  "answer (ok):", "line1", "line2", "done: complete"));
  for (const std::string& l : all) {
    EXPECT_EQ(l.find('\x1b'), std::string::npos) << l;
  }
}

}  // namespace
}  // namespace agentstream::cli
