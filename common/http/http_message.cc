#include "common/http/http_message.h"

#include <algorithm>

#include "common/http/ascii.h"

namespace agentstream::http {

void HttpHeaders::Add(std::string name, std::string value) {
  fields_.push_back({std::move(name), std::move(value)});
}

void HttpHeaders::Set(std::string_view name, std::string value) {
  Remove(name);
  fields_.push_back({std::string(name), std::move(value)});
}

void HttpHeaders::Remove(std::string_view name) {
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(),
                               [name](const Field& f) {
                                 return EqualsIgnoreCase(f.name, name);
                               }),
                fields_.end());
}

std::optional<std::string_view> HttpHeaders::Get(std::string_view name) const {
  for (const Field& f : fields_) {
    if (EqualsIgnoreCase(f.name, name)) return f.value;
  }
  return std::nullopt;
}

std::string_view HttpHeaders::GetOr(std::string_view name,
                                    std::string_view fallback) const {
  auto v = Get(name);
  return v ? *v : fallback;
}

size_t HttpHeaders::Count(std::string_view name) const {
  size_t n = 0;
  for (const Field& f : fields_) {
    if (EqualsIgnoreCase(f.name, name)) ++n;
  }
  return n;
}

bool HttpHeaders::HasToken(std::string_view name,
                           std::string_view token) const {
  for (const Field& f : fields_) {
    if (!EqualsIgnoreCase(f.name, name)) continue;
    for (std::string_view piece : SplitView(f.value, ',')) {
      if (EqualsIgnoreCase(StripOws(piece), token)) {
        return true;
      }
    }
  }
  return false;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::multimap<std::string, std::string> ParseQuery(std::string_view query) {
  std::multimap<std::string, std::string> params;
  for (std::string_view piece : SplitView(query, '&')) {
    if (piece.empty()) continue;
    const size_t eq = piece.find('=');
    if (eq == std::string_view::npos) {
      params.emplace(PercentDecode(piece, true), "");
    } else {
      params.emplace(PercentDecode(piece.substr(0, eq), true),
                     PercentDecode(piece.substr(eq + 1), true));
    }
  }
  return params;
}

}  // namespace agentstream::http
