// Test helper: runs jwt_tool.py (Python's jwt and cryptography, Debian's
// python3-jwt and python3-cryptography at /usr/bin/python3) to make keys
// and tokens independently of the code under test.
#ifndef AGENTSTREAM_TESTS_UNIT_GATEWAY_AUTH_JWT_TOOL_H_
#define AGENTSTREAM_TESTS_UNIT_GATEWAY_AUTH_JWT_TOOL_H_

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace agentstream::gateway::auth::testing {

// Debian's interpreter: a `python3` on PATH may be another one without
// the packages.
inline constexpr char kPython[] = "/usr/bin/python3";

inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The tool's stdout without the final line break, or an error with its
// exit status.
inline absl::StatusOr<std::string> RunJwtTool(
    const std::vector<std::string>& args) {
  // Built with += only (GCC 12's -Wrestrict misfires on "x" + string&&).
  std::string cmd = kPython;
  cmd += ' ';
  cmd += ShellQuote(AGENTSTREAM_AUTH_TEST_DIR "/jwt_tool.py");
  for (const std::string& a : args) {
    cmd += ' ';
    cmd += ShellQuote(a);
  }
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return absl::InternalError("popen failed");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  if (status != 0) {
    return absl::InternalError("jwt_tool.py " + args.front() +
                               " failed (status " + std::to_string(status) +
                               "): " + out);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Whether the tool can run; under CI=true its absence is a failure (the
// caller fails), elsewhere a skip.
inline bool JwtToolAvailable() { return RunJwtTool({"check"}).ok(); }
inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

}  // namespace agentstream::gateway::auth::testing

// In a test's SetUp: skip (or fail under CI=true) without python3-jwt.
#define REQUIRE_JWT_TOOL()                                                   \
  do {                                                                       \
    if (!::agentstream::gateway::auth::testing::JwtToolAvailable()) {        \
      if (::agentstream::gateway::auth::testing::InCi()) {                   \
        FAIL() << "CI=true and /usr/bin/python3 cannot import jwt and "      \
                  "cryptography (Debian: python3-jwt python3-cryptography)"; \
      }                                                                      \
      GTEST_SKIP() << "needs /usr/bin/python3 with jwt and cryptography "    \
                      "(Debian: python3-jwt python3-cryptography)";          \
    }                                                                        \
  } while (0)

#endif  // AGENTSTREAM_TESTS_UNIT_GATEWAY_AUTH_JWT_TOOL_H_
