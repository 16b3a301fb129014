#include "gateway/static_files.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace agentstream::gateway {
namespace {

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

}  // namespace

absl::StatusOr<std::string> ResolveStaticPath(const std::string& web_root,
                                              std::string_view request_path) {
  const absl::Status not_found = absl::NotFoundError(
      absl::StrCat("no such file: ", std::string(request_path)));
  if (request_path.empty() || request_path[0] != '/') return not_found;
  std::string rel(request_path.substr(1));
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  if (rel.find('\\') != std::string::npos ||
      rel.find('\0') != std::string::npos) {
    return not_found;
  }
  for (absl::string_view segment : absl::StrSplit(rel, '/')) {
    if (segment.empty() || segment[0] == '.') return not_found;
  }
  const std::string root = RealPath(web_root);
  if (root.empty()) return not_found;
  const std::string file = RealPath(absl::StrCat(root, "/", rel));
  if (file.empty() || !absl::StartsWith(file, absl::StrCat(root, "/"))) {
    return not_found;
  }
  struct stat st;
  if (stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return not_found;
  return file;
}

std::string ContentTypeForPath(std::string_view path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(path.substr(dot + 1));
  absl::AsciiStrToLower(&ext);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "gif") return "image/gif";
  if (ext == "webp") return "image/webp";
  if (ext == "ico") return "image/x-icon";
  // TypeScript declarations (agentstream.d.ts) are read, not run.
  if (ext == "txt" || ext == "ts") return "text/plain; charset=utf-8";
  if (ext == "woff2") return "font/woff2";
  if (ext == "woff") return "font/woff";
  if (ext == "webmanifest") return "application/manifest+json";
  return "application/octet-stream";
}

}  // namespace agentstream::gateway
