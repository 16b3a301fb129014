// Small ASCII helpers on std::string_view for the HTTP library (Debian's
// Abseil has its own string_view type, distinct from std::string_view).
#ifndef AGENTSTREAM_COMMON_HTTP_ASCII_H_
#define AGENTSTREAM_COMMON_HTTP_ASCII_H_

#include <string_view>
#include <vector>

namespace agentstream::http {

inline char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// Without spaces and tabs at either end (HTTP's optional whitespace).
inline std::string_view StripOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Every piece between `sep`s, empty ones included.
inline std::vector<std::string_view> SplitView(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t i = s.find(sep);
    out.push_back(s.substr(0, i));
    if (i == std::string_view::npos) return out;
    s.remove_prefix(i + 1);
  }
}

}  // namespace agentstream::http

#endif  // AGENTSTREAM_COMMON_HTTP_ASCII_H_
