// Fuzz target: the SSE encoder (gateway/sse_encoder.h) against an
// independent parser of the event-stream format, written from the rules
// browsers follow (the header's "WHATWG event-stream parser").
//
// The input is a script of encoder calls (one op byte, then its arguments as
// length-prefixed strings, see FuzzInput). The blocks are concatenated into
// one stream, as the gateway writes them, and parsed; what the parser
// dispatches must be exactly what the encoder's header promises:
//   EncodeEvent(id, event, data)  one event; its data is `data` with every
//       CRLF, CR and LF read as LF, byte for byte; its type is `event` without
//       CR, LF and NUL ("message" when that is empty); the last event id
//       becomes `id` without CR, LF and NUL, or stays as it was when that is
//       empty.
//   EncodeComment(text)           nothing at all (invisible).
//   EncodeRetry(ms)               the reconnection time becomes max(ms, 0).
//   EncodeHeartbeat(style, json)  nothing (comment) or one "heartbeat" event
//                                 that leaves the last event id alone.
// Every block is complete: the stream must end at an event boundary.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/sse_encoder.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using agentstream::fuzz::FuzzInput;
namespace gw = agentstream::gateway;

struct Event {
  std::string type;
  std::string data;
  std::string last_event_id;

  bool operator==(const Event&) const = default;
};

// The event-stream interpretation of the standard, on bytes (the standard
// decodes UTF-8 first; the encoder promises to pass bytes through, which is
// the stronger property, and CR, LF, ':' and ' ' are ASCII either way).
class SpecParser {
 public:
  void Parse(std::string_view stream) {
    // One leading U+FEFF BOM is ignored.
    if (stream.substr(0, 3) == "\xEF\xBB\xBF") stream.remove_prefix(3);
    size_t start = 0;
    for (size_t i = 0; i < stream.size(); ++i) {
      if (stream[i] != '\r' && stream[i] != '\n') continue;
      Line(stream.substr(start, i - start));
      // CRLF is one line ending.
      if (stream[i] == '\r' && i + 1 < stream.size() && stream[i + 1] == '\n') {
        ++i;
      }
      start = i + 1;
    }
    // A last line without a line ending is not a line: any pending event
    // is discarded at the end of the stream.
    trailing_ = stream.substr(start);
  }

  const std::vector<Event>& events() const { return events_; }
  const std::string& last_event_id() const { return last_event_id_; }
  const std::optional<uint64_t>& reconnection_ms() const {
    return reconnection_ms_;
  }
  // Whether anything is pending: an unfinished line or buffered fields.
  bool pending() const {
    return !trailing_.empty() || !data_.empty() || !type_.empty() ||
           id_buffer_ != last_event_id_;
  }

 private:
  void Line(std::string_view line) {
    if (line.empty()) return Dispatch();
    if (line.front() == ':') return;  // A comment.
    std::string_view field = line;
    std::string_view value;
    if (const size_t colon = line.find(':'); colon != line.npos) {
      field = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "event") {
      type_ = std::string(value);
    } else if (field == "data") {
      data_.append(value);
      data_.push_back('\n');
    } else if (field == "id") {
      if (value.find('\0') == value.npos) id_buffer_ = std::string(value);
    } else if (field == "retry") {
      bool digits = !value.empty();
      uint64_t ms = 0;
      for (char c : value) {
        if (c < '0' || c > '9') digits = false;
        ms = ms * 10 + static_cast<uint64_t>(c - '0');  // Wraps: checked below.
      }
      if (digits && value.size() <= 19) reconnection_ms_ = ms;
    }
    // Any other field is ignored.
  }

  void Dispatch() {
    last_event_id_ = id_buffer_;
    if (data_.empty()) {
      type_.clear();
      return;
    }
    if (data_.back() == '\n') data_.pop_back();
    events_.push_back(
        {type_.empty() ? "message" : type_, std::move(data_), last_event_id_});
    data_.clear();
    type_.clear();
  }

  std::string data_;
  std::string type_;
  std::string id_buffer_;
  std::string last_event_id_;
  std::optional<uint64_t> reconnection_ms_;
  std::string_view trailing_;
  std::vector<Event> events_;
};

// What the encoder's header promises, computed without the encoder.
std::string LinesAsLf(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string WithoutCrLfNul(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c != '\r' && c != '\n' && c != '\0') out.push_back(c);
  }
  return out;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[(c >> 4) & 0xf]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  std::string stream;
  std::vector<Event> expected;
  std::string last_event_id;
  std::optional<uint64_t> reconnection_ms;
  // Bounded: a few ops already cover concatenation.
  for (int op = 0; op < 16 && !in.empty(); ++op) {
    switch (in.TakeByte() % 4) {
      case 0: {
        const std::string_view id = in.TakeString();
        const std::string_view event = in.TakeString();
        const std::string_view payload = in.TakeString();
        const std::string block = gw::EncodeEvent(id, event, payload);
        FUZZ_CHECK(block.size() >= 2 && block.ends_with("\n\n"),
                   Printable(block));
        stream += block;
        if (const std::string clean = WithoutCrLfNul(id); !clean.empty()) {
          last_event_id = clean;
        }
        const std::string type = WithoutCrLfNul(event);
        expected.push_back({type.empty() ? "message" : type, LinesAsLf(payload),
                            last_event_id});
        break;
      }
      case 1:
        stream += gw::EncodeComment(in.TakeString());
        break;
      case 2: {
        const auto ms = static_cast<int64_t>(in.TakeU64());
        stream += gw::EncodeRetry(ms);
        reconnection_ms = static_cast<uint64_t>(ms < 0 ? 0 : ms);
        break;
      }
      case 3: {
        const bool as_event = in.TakeByte() & 1;
        const std::string_view json = in.TakeString();
        stream += gw::EncodeHeartbeat(as_event ? gw::HeartbeatStyle::kEvent
                                               : gw::HeartbeatStyle::kComment,
                                      json);
        if (as_event) {
          expected.push_back({"heartbeat", LinesAsLf(json), last_event_id});
        }
        break;
      }
    }
  }

  SpecParser parser;
  parser.Parse(stream);
  FUZZ_CHECK(!parser.pending(), "stream ends mid-event: " + Printable(stream));
  FUZZ_CHECK(parser.events().size() == expected.size(),
             std::to_string(parser.events().size()) + " events, expected " +
                 std::to_string(expected.size()) + ": " + Printable(stream));
  for (size_t i = 0; i < expected.size(); ++i) {
    const Event& got = parser.events()[i];
    const Event& want = expected[i];
    FUZZ_CHECK(got.type == want.type, "event " + std::to_string(i) + " type " +
                                          Printable(got.type) +
                                          " != " + Printable(want.type));
    FUZZ_CHECK(got.data == want.data, "event " + std::to_string(i) + " data " +
                                          Printable(got.data) +
                                          " != " + Printable(want.data));
    FUZZ_CHECK(got.last_event_id == want.last_event_id,
               "event " + std::to_string(i) + " id " +
                   Printable(got.last_event_id) +
                   " != " + Printable(want.last_event_id));
  }
  FUZZ_CHECK(parser.last_event_id() == last_event_id,
             Printable(parser.last_event_id()));
  FUZZ_CHECK(parser.reconnection_ms() == reconnection_ms, Printable(stream));
  return 0;
}
