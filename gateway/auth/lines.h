// Line-by-line reading of the key and token files (jwt_keys.cc,
// token_file.cc): one definition of what a line is.
#ifndef AGENTSTREAM_GATEWAY_AUTH_LINES_H_
#define AGENTSTREAM_GATEWAY_AUTH_LINES_H_

#include <string_view>

namespace agentstream::gateway::auth {

// Takes the next line off `*contents` (without its '\n' or a '\r' before
// it).
inline std::string_view TakeLine(std::string_view* contents) {
  const size_t nl = contents->find('\n');
  std::string_view line = contents->substr(0, nl);
  contents->remove_prefix(nl == std::string_view::npos ? contents->size()
                                                       : nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_LINES_H_
