// The Server-Sent Events wire format (docs/GATEWAY.md, "The wire"), as pure
// functions.
//
// A payload can never break the framing: every line of `data` becomes its own
// `data:` line (CR, LF and CRLF all count as line breaks, as the WHATWG
// event-stream parser reads them), and CR, LF and NUL are stripped from the
// `id` and `event` fields. Bytes are otherwise passed through untouched, so
// UTF-8 text stays as it was. Every function returns complete, blank-line
// terminated blocks that can be concatenated and written in one go.
//
// Thread-safe (no state).
#ifndef AGENTSTREAM_GATEWAY_SSE_ENCODER_H_
#define AGENTSTREAM_GATEWAY_SSE_ENCODER_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace agentstream::gateway {

enum class HeartbeatStyle {
  kComment,  // ": heartbeat" (invisible to EventSource listeners)
  kEvent,    // "event: heartbeat" with a small JSON payload
};

// "retry: <ms>\n\n": the client's reconnection delay.
std::string EncodeRetry(int64_t retry_ms);

// One event. An empty `id` writes no `id:` line (the resume point does not
// move); an empty `event` writes no `event:` line (the client sees
// "message"). `data` is split into one `data:` line per line.
std::string EncodeEvent(std::string_view id, std::string_view event,
                        std::string_view data);
// EncodeEvent appending to `out`, with no temporary string.
void AppendEvent(std::string_view id, std::string_view event,
                 std::string_view data, std::string* out);

// A comment block (": text"), one comment line per line of `text`.
std::string EncodeComment(std::string_view text);

// A heartbeat: never carries an id. `data_json` is used by kEvent only.
std::string EncodeHeartbeat(HeartbeatStyle style, std::string_view data_json);

// `value` without CR, LF and NUL: safe as an `id` or `event` field value.
std::string SanitizeFieldValue(std::string_view value);

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_SSE_ENCODER_H_
