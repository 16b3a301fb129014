// Static files of the web client (GET / and below), without path traversal:
// a request path maps to a regular file under the web root or to nothing.
// Pure functions apart from reading the file system; thread-safe.
#ifndef AGENTSTREAM_GATEWAY_STATIC_FILES_H_
#define AGENTSTREAM_GATEWAY_STATIC_FILES_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace agentstream::gateway {

// The file for a decoded request path ("/" is "/index.html"). kNotFound when
// the path has "..", ".", empty or hidden segments, a backslash or NUL, when
// the file is missing or not regular, or when it resolves (through links)
// outside `web_root`.
absl::StatusOr<std::string> ResolveStaticPath(const std::string& web_root,
                                              std::string_view request_path);

// "text/html; charset=utf-8", "text/javascript; charset=utf-8", ... by
// extension; "application/octet-stream" when unknown.
std::string ContentTypeForPath(std::string_view path);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_STATIC_FILES_H_
