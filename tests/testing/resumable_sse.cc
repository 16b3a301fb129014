#include "tests/testing/resumable_sse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace agentstream::testing {
namespace {

std::string FindHeader(const std::multimap<std::string, std::string>& headers,
                       const std::string& name) {
  auto it = headers.find(absl::AsciiStrToLower(name));
  return it == headers.end() ? "" : it->second;
}

int ConnectLoopback(int port, int rcvbuf, std::string* error) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = absl::StrCat("socket: ", std::strerror(errno));
    return -1;
  }
  if (rcvbuf > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *error = absl::StrCat("connect: ", std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n =
        send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads into `buf`; returns bytes read, 0 on EOF, -1 on error, -2 on
// deadline.
ssize_t ReadSome(int fd, char* buf, size_t len, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return -2;
    pollfd p{fd, POLLIN, 0};
    const int ms = static_cast<int>(
        std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    const int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) continue;
    const ssize_t n = recv(fd, buf, len, 0);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

std::string BuildRequest(const RawSseRequest& request) {
  std::string out = absl::StrCat(request.method, " ", request.path,
                                 " HTTP/1.1\r\nHost: 127.0.0.1:", request.port,
                                 "\r\nAccept: text/event-stream\r\n"
                                 "Connection: close\r\n");
  for (const auto& [k, v] : request.headers) {
    absl::StrAppend(&out, k, ": ", v, "\r\n");
  }
  if (!request.body.empty() || request.method == "POST") {
    absl::StrAppend(&out, "Content-Type: application/json\r\nContent-Length: ",
                    request.body.size(), "\r\n");
  }
  absl::StrAppend(&out, "\r\n", request.body);
  return out;
}

// De-chunks an HTTP/1.1 body incrementally.
class BodyDecoder {
 public:
  enum class Mode { kChunked, kLength, kClose };
  BodyDecoder(Mode mode, int64_t length) : mode_(mode), remaining_(length) {}

  // Appends the body bytes of `in` to `out`; leaves unconsumed framing in
  // `in`. Returns false on a framing error.
  bool Decode(std::string& in, std::string& out) {
    if (mode_ == Mode::kClose) {
      out.append(in);
      in.clear();
      return true;
    }
    if (mode_ == Mode::kLength) {
      const int64_t take =
          std::min<int64_t>(remaining_, static_cast<int64_t>(in.size()));
      out.append(in, 0, static_cast<size_t>(take));
      in.erase(0, static_cast<size_t>(take));
      remaining_ -= take;
      if (remaining_ == 0) done_ = true;
      return true;
    }
    size_t pos = 0;
    while (!done_) {
      if (state_ == State::kSize) {
        const size_t eol = in.find("\r\n", pos);
        if (eol == std::string::npos) break;
        std::string line = in.substr(pos, eol - pos);
        if (size_t semi = line.find(';'); semi != std::string::npos) {
          line.resize(semi);
        }
        uint64_t size = 0;
        if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line), &size)) {
          return false;
        }
        pos = eol + 2;
        remaining_ = static_cast<int64_t>(size);
        state_ = size == 0 ? State::kTrailer : State::kData;
      } else if (state_ == State::kData) {
        const int64_t take = std::min<int64_t>(
            remaining_, static_cast<int64_t>(in.size() - pos));
        out.append(in, pos, static_cast<size_t>(take));
        pos += static_cast<size_t>(take);
        remaining_ -= take;
        if (remaining_ > 0) break;
        state_ = State::kDataCrlf;
      } else if (state_ == State::kDataCrlf) {
        if (in.size() - pos < 2) break;
        if (in.compare(pos, 2, "\r\n") != 0) return false;
        pos += 2;
        state_ = State::kSize;
      } else {  // kTrailer: lines until an empty one.
        const size_t eol = in.find("\r\n", pos);
        if (eol == std::string::npos) break;
        const bool empty = eol == pos;
        pos = eol + 2;
        if (empty) done_ = true;
      }
    }
    in.erase(0, pos);
    return true;
  }
  bool done() const { return done_; }
  Mode mode() const { return mode_; }

 private:
  enum class State { kSize, kData, kDataCrlf, kTrailer };
  Mode mode_;
  State state_ = State::kSize;
  int64_t remaining_ = 0;
  bool done_ = false;
};

}  // namespace

std::string RawSseResult::Header(const std::string& name) const {
  return FindHeader(headers, name);
}

std::vector<const SseEvent*> RawSseResult::Messages() const {
  std::vector<const SseEvent*> out;
  for (const auto& e : events) {
    if (e.event == "message") out.push_back(&e);
  }
  return out;
}

bool RawSseResult::EndedWithDone() const {
  return !events.empty() && events.back().event == "done";
}

std::string RawSseResult::RunId() const {
  std::string id = FindHeader(headers, "X-Request-Id");
  if (id.empty() && !events.empty() && events.front().json.is_object()) {
    id = events.front().json.value("request_id", "");
  }
  return id;
}

std::string HttpResult::Header(const std::string& name) const {
  return FindHeader(headers, name);
}

RawSseResult RawSse(const RawSseRequest& request) {
  RawSseResult result;
  const absl::Time deadline = absl::Now() + request.timeout;
  const int fd =
      ConnectLoopback(request.port, request.rcvbuf_bytes, &result.error);
  if (fd < 0) return result;
  if (!SendAll(fd, BuildRequest(request))) {
    result.error = "send failed";
    close(fd);
    return result;
  }

  std::string in;
  std::optional<BodyDecoder> decoder;
  SseParser parser;
  parser.on_comment = [&](std::string_view) {
    result.comment_times.push_back(absl::Now());
  };
  bool closing = false;
  absl::Duration pause = absl::ZeroDuration();
  auto on_event = [&](SseEvent e) {
    result.events.push_back(std::move(e));
    if (request.on_event) {
      RawSseAction action = request.on_event(result.events.back());
      if (action.close) closing = true;
      pause = std::max(pause, action.pause);
    }
  };
  // Feeds body bytes to the parser, honouring the cut point.
  auto feed = [&](std::string_view bytes) {
    if (request.cut_after_bytes.has_value()) {
      const int64_t room =
          *request.cut_after_bytes - static_cast<int64_t>(result.body.size());
      if (static_cast<int64_t>(bytes.size()) >= room) {
        bytes =
            bytes.substr(0, static_cast<size_t>(std::max<int64_t>(0, room)));
        result.cut = true;
        closing = true;
      }
    }
    // Event by event so that a close or a pause asked by on_event takes
    // effect before the next event is parsed.
    result.body.append(bytes);
    parser.Feed(bytes, on_event);
  };
  char buf[16384];
  while (!closing) {
    if (pause > absl::ZeroDuration()) {
      absl::SleepFor(pause);
      pause = absl::ZeroDuration();
    }
    const ssize_t n = ReadSome(fd, buf, sizeof(buf), deadline);
    if (n == -2) {
      result.error = "client deadline passed";
      break;
    }
    if (n < 0) {
      result.error = absl::StrCat("recv: ", std::strerror(errno));
      break;
    }
    if (n == 0) {
      if (decoder.has_value() && decoder->mode() == BodyDecoder::Mode::kClose) {
        result.complete = true;
      } else if (!decoder.has_value() || !decoder->done()) {
        result.error = "connection closed before the response ended";
      }
      break;
    }
    in.append(buf, static_cast<size_t>(n));
    if (!decoder.has_value()) {
      const size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      const std::string head = in.substr(0, end);
      in.erase(0, end + 4);
      std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
      std::vector<std::string> status_parts =
          absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
      if (status_parts.size() < 2 ||
          !absl::SimpleAtoi(status_parts[1], &result.status)) {
        result.error = "bad status line: " + lines[0];
        break;
      }
      for (size_t i = 1; i < lines.size(); ++i) {
        const size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        result.headers.emplace(
            absl::AsciiStrToLower(lines[i].substr(0, colon)),
            std::string(absl::StripAsciiWhitespace(
                absl::string_view(lines[i]).substr(colon + 1))));
      }
      const std::string te = absl::AsciiStrToLower(
          FindHeader(result.headers, "transfer-encoding"));
      const std::string cl = FindHeader(result.headers, "content-length");
      int64_t length = 0;
      if (te.find("chunked") != std::string::npos) {
        decoder.emplace(BodyDecoder::Mode::kChunked, 0);
      } else if (!cl.empty() && absl::SimpleAtoi(cl, &length)) {
        decoder.emplace(BodyDecoder::Mode::kLength, length);
      } else if (result.status == 204 || result.status == 304) {
        decoder.emplace(BodyDecoder::Mode::kLength, 0);
      } else {
        decoder.emplace(BodyDecoder::Mode::kClose, 0);
      }
      if (request.cut_after_bytes.has_value() &&
          *request.cut_after_bytes <= 0) {
        result.cut = true;
        break;
      }
    }
    std::string body;
    if (!decoder->Decode(in, body)) {
      result.error = "bad chunked framing";
      break;
    }
    // Feed in slices ending at blank lines so that on_event's close/pause
    // apply between events rather than after a whole read.
    size_t start = 0;
    while (start < body.size() && !closing) {
      size_t end = body.find("\n\n", start);
      end = end == std::string::npos ? body.size() : end + 2;
      feed(std::string_view(body).substr(start, end - start));
      start = end;
      if (pause > absl::ZeroDuration() && !closing) {
        absl::SleepFor(pause);
        pause = absl::ZeroDuration();
      }
    }
    if (decoder->done()) {
      result.complete = true;
      break;
    }
  }
  if (closing && !result.cut) result.cut = true;
  close(fd);
  result.last_event_id = parser.last_event_id();
  result.comments = parser.comments();
  return result;
}

ResumeResult ResumeUntilEnd(const ResumeOptions& options) {
  ResumeResult out;
  std::string last_id;
  for (int attempt = 0; attempt < options.max_connections; ++attempt) {
    RawSseRequest req = options.first;
    if (attempt > 0) {
      if (options.reconnect_delay > absl::ZeroDuration()) {
        absl::SleepFor(options.reconnect_delay);
      }
      const std::string path =
          options.resume_path ? options.resume_path(attempt, out.run_id) : "";
      if (!path.empty()) {
        req.path = path;
        req.method = "GET";
        req.body.clear();
      }
      const std::string id =
          last_id.empty() ? absl::StrCat(out.run_id, ":0") : last_id;
      req.headers.emplace_back("Last-Event-ID", id);
    }
    req.cut_after_bytes = options.cut_for_attempt
                              ? options.cut_for_attempt(attempt, out)
                              : std::nullopt;
    RawSseResult r = RawSse(req);
    if (out.run_id.empty()) out.run_id = r.RunId();
    if (!r.last_event_id.empty()) last_id = r.last_event_id;
    for (const SseEvent& e : r.events) {
      if (e.event == "message") {
        out.messages.push_back(e);
      } else {
        out.others.push_back(e);
      }
    }
    if (r.cut) ++out.cuts;
    const int status = r.status;
    const bool done = r.EndedWithDone();
    const bool cut = r.cut;
    std::string error = r.error;
    out.connections.push_back(std::move(r));
    if (status == 204) {
      out.ended_with_204 = true;
      break;
    }
    if (status != 200) {
      out.error = absl::StrCat("HTTP ", status, " on connection ", attempt,
                               error.empty() ? "" : ": ", error);
      break;
    }
    if (done) {
      out.got_done = true;
      break;
    }
    if (!cut && !error.empty() && error == "client deadline passed") {
      out.error = error;
      break;
    }
    // Cut by us, or ended by the server without done: reconnect.
  }
  if (!out.got_done && !out.ended_with_204 && out.error.empty()) {
    out.error = "too many connections";
  }
  out.last_event_id = last_id;
  return out;
}

std::string CheckDenseRun(const std::vector<SseEvent>& messages,
                          const std::string& request_id) {
  if (messages.empty()) return "no updates";
  for (size_t i = 0; i < messages.size(); ++i) {
    const SseEvent& e = messages[i];
    const uint64_t want = i + 1;
    if (e.json.is_discarded() || !e.json.contains("seq")) {
      return absl::StrCat("update ", i, " is not an update: ", e.data);
    }
    const uint64_t seq = e.json["seq"].get<uint64_t>();
    if (seq != want) {
      return absl::StrCat("update #", i, " has seq ", seq, ", want ", want,
                          " (", seq < want ? "duplicate" : "hole", ")");
    }
    if (e.id != absl::StrCat(request_id, ":", seq)) {
      return absl::StrCat("seq ", seq, " has id ", e.id);
    }
    if (e.json.value("request_id", "") != request_id) {
      return absl::StrCat("seq ", seq, " of another run: ", e.data);
    }
  }
  if (messages.back().json.value("type", "") != "complete") {
    return "last update is not complete: " + messages.back().data;
  }
  return "";
}

HttpResult HttpCall(int port, const std::string& method,
                    const std::string& path, absl::Duration timeout) {
  RawSseRequest req;
  req.method = method;
  req.port = port;
  req.path = path;
  req.timeout = timeout;
  RawSseResult r = RawSse(req);
  HttpResult out;
  out.status = r.status;
  out.headers = std::move(r.headers);
  out.body = std::move(r.body);
  return out;
}

absl::StatusOr<int64_t> RssKib(int pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/status");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      absl::string_view rest =
          absl::StripAsciiWhitespace(absl::string_view(line).substr(6));
      absl::ConsumeSuffix(&rest, " kB");
      int64_t kb = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kb)) return kb;
      return absl::DataLossError(absl::StrCat(path, ": ", line));
    }
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS in ", path));
}

int64_t RssKibOrFail(int pid) {
  const absl::StatusOr<int64_t> kib = RssKib(pid);
  if (!kib.ok()) {
    ADD_FAILURE() << kib.status();
    return -1;
  }
  return *kib;
}

}  // namespace agentstream::testing
