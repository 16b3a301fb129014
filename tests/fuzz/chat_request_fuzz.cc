// Fuzz target: chat request parsing (gateway/chat_request.h), from the query
// string or the JSON body to the RunRequest the orchestrator receives.
//
// Input: one byte choosing the form (even: POST body, odd: GET query
// string), then the body or query string. For every input:
//   - errors are kInvalidArgument or kOutOfRange (over a limit) only;
//   - IsValidUtf8 agrees with an independent UTF-8 validator (Unicode's
//     well-formed byte sequences table) on the input and the message;
//   - JsonNestingDepth of any valid JSON body is its deepest nesting (as
//     nlohmann's SAX parser sees it);
//   - a body with a raw NUL byte is refused (it is not JSON).
// For every accepted request:
//   - the header's rules hold: a non-blank message of valid UTF-8 within the
//     form's limit; at most kMaxSpecialists distinct, trimmed, non-empty
//     names of valid UTF-8 and at most kMaxSpecialistNameBytes; options an
//     object no deeper than kMaxOptionsDepth;
//   - the RunRequest built from it as the gateway builds it (RunParams,
//     JsonToStruct) serializes and parses back equal, as the orchestrator
//     parses it (protobuf rejects invalid UTF-8 and deep nesting);
//   - writing the request back in the same form and parsing it again gives
//     the same request.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agentstream/v1/orchestrator.pb.h"
#include "common/update_json.h"
#include "gateway/chat_request.h"
#include "google/protobuf/util/message_differencer.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_input.h"

namespace {

using agentstream::fuzz::FuzzInput;
using agentstream::fuzz::ReferenceUtf8;
namespace gw = agentstream::gateway;
using Params = std::multimap<std::string, std::string>;

// The depth of a JSON tree, counted as JsonNestingDepth counts: every object
// or array is one level.
int TreeDepth(const nlohmann::json& j) {
  if (!j.is_structured()) return 0;
  int deepest = 0;
  for (const auto& child : j) deepest = std::max(deepest, TreeDepth(child));
  return deepest + 1;
}

// The deepest nesting of JSON text, from nlohmann's SAX events: unlike the
// parsed tree it sees every value, also those of a key that comes again
// (the tree keeps the last).
class DepthSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  int max_depth() const { return max_depth_; }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return Enter(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return Leave(); }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_array() override { return Leave(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool Enter() {
    max_depth_ = std::max(max_depth_, ++depth_);
    return true;
  }
  bool Leave() {
    --depth_;
    return true;
  }
  int depth_ = 0;
  int max_depth_ = 0;
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "%XX" and '+' decoded, as an HTTP server decodes a query string.
std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 &&
               HexDigit(s[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Params ParseQueryString(std::string_view query) {
  Params params;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == query.npos) amp = query.size();
    const std::string_view pair = query.substr(start, amp - start);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      params.emplace(UrlDecode(pair.substr(0, eq)),
                     eq == pair.npos ? "" : UrlDecode(pair.substr(eq + 1)));
    }
    start = amp + 1;
  }
  return params;
}

void CheckRequest(const gw::ChatRequest& r, size_t max_message_bytes) {
  FUZZ_CHECK(!absl::StripAsciiWhitespace(r.message).empty(), "blank message");
  FUZZ_CHECK(r.message.size() <= max_message_bytes, "message over the limit");
  FUZZ_CHECK(ReferenceUtf8(r.message), "message is not UTF-8");
  FUZZ_CHECK(r.specialists.size() <= gw::kMaxSpecialists, "too many names");
  for (size_t i = 0; i < r.specialists.size(); ++i) {
    const std::string& name = r.specialists[i];
    FUZZ_CHECK(!name.empty() && name.size() <= gw::kMaxSpecialistNameBytes,
               "name length");
    FUZZ_CHECK(absl::StripAsciiWhitespace(name) == name, "untrimmed name");
    FUZZ_CHECK(ReferenceUtf8(name), "name is not UTF-8");
    for (size_t k = 0; k < i; ++k) {
      FUZZ_CHECK(r.specialists[k] != name, "duplicate name " + name);
    }
  }
  FUZZ_CHECK(r.options.is_object(), "options not an object");
  FUZZ_CHECK(TreeDepth(r.options) <= gw::kMaxOptionsDepth,
             absl::StrCat("options depth ", TreeDepth(r.options)));

  // The RunRequest as the gateway sends it and the orchestrator reads it.
  agentstream::v1::RunRequest run;
  run.set_request_id("req_0123456789abcdef");
  run.set_message(r.message);
  for (const auto& name : r.specialists) run.add_specialists(name);
  *run.mutable_options() = agentstream::JsonToStruct(r.options);
  run.set_on_disconnect(r.on_disconnect);
  std::string wire;
  FUZZ_CHECK(run.SerializeToString(&wire), "RunRequest does not serialize");
  agentstream::v1::RunRequest parsed;
  FUZZ_CHECK(parsed.ParseFromString(wire),
             "the orchestrator cannot parse the RunRequest");
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(run, parsed),
             "RunRequest changed on the wire");
}

void CheckSame(const gw::ChatRequest& a, const gw::ChatRequest& b) {
  FUZZ_CHECK(a.message == b.message, "message changed");
  FUZZ_CHECK(a.specialists == b.specialists, "specialists changed");
  FUZZ_CHECK(a.options == b.options, "options changed");
  FUZZ_CHECK(a.format.heartbeat == b.format.heartbeat, "heartbeat changed");
  FUZZ_CHECK(a.on_disconnect == b.on_disconnect, "on_disconnect changed");
}

std::string PolicyName(agentstream::v1::DisconnectPolicy p) {
  switch (p) {
    case agentstream::v1::DISCONNECT_POLICY_CANCEL:
      return "cancel";
    case agentstream::v1::DISCONNECT_POLICY_CONTINUE:
      return "continue";
    default:
      return "grace";
  }
}

void CheckStatus(const absl::Status& s) {
  FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument ||
                 s.code() == absl::StatusCode::kOutOfRange,
             s.ToString());
}

void FuzzBody(std::string_view body) {
  // nlohmann stops at a NUL byte: text with one is not JSON (and is
  // refused, see below).
  const bool has_nul = body.find('\0') != body.npos;
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_discarded() && !has_nul) {
    DepthSax sax;
    FUZZ_CHECK(nlohmann::json::sax_parse(body, &sax), "SAX parse failed");
    FUZZ_CHECK(gw::JsonNestingDepth(body) == sax.max_depth(),
               absl::StrCat("JsonNestingDepth ", gw::JsonNestingDepth(body),
                            " != ", sax.max_depth()));
  }
  absl::StatusOr<gw::ChatRequest> r = gw::ParseChatBody(body);
  if (!r.ok()) return CheckStatus(r.status());
  FUZZ_CHECK(!has_nul, "accepted a body with a NUL byte");
  CheckRequest(*r, gw::kMaxPostBodyBytes);

  nlohmann::json again = {
      {"message", r->message},
      {"specialists", r->specialists},
      {"options", r->options},
      {"heartbeat",
       r->format.heartbeat == gw::HeartbeatStyle::kEvent ? "event" : "comment"},
      {"on_disconnect", PolicyName(r->on_disconnect)}};
  absl::StatusOr<gw::ChatRequest> r2 = gw::ParseChatBody(again.dump());
  FUZZ_CHECK(r2.ok(), r2.status().ToString());
  CheckSame(*r, *r2);
}

void FuzzQuery(std::string_view query) {
  const Params params = ParseQueryString(query);
  absl::StatusOr<gw::ChatRequest> r = gw::ParseChatQuery(params);
  if (!r.ok()) return CheckStatus(r.status());
  CheckRequest(*r, gw::kMaxGetMessageBytes);

  Params again = {
      {"message", r->message},
      {"options", r->options.dump()},
      {"heartbeat",
       r->format.heartbeat == gw::HeartbeatStyle::kEvent ? "event" : "comment"},
      {"on_disconnect", PolicyName(r->on_disconnect)}};
  if (!r->specialists.empty()) {
    again.emplace("specialists", absl::StrJoin(r->specialists, ","));
  }
  absl::StatusOr<gw::ChatRequest> r2 = gw::ParseChatQuery(again);
  // A name with a comma cannot be sent in the GET form; none can come from
  // it either (names are split on commas).
  FUZZ_CHECK(r2.ok(), r2.status().ToString());
  CheckSame(*r, *r2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const bool get = in.TakeByte() & 1;
  const std::string_view text = in.TakeRest();
  FUZZ_CHECK(gw::IsValidUtf8(text) == ReferenceUtf8(text),
             "IsValidUtf8 disagrees with the reference");
  if (get) {
    FuzzQuery(text);
  } else {
    FuzzBody(text);
  }
  return 0;
}
