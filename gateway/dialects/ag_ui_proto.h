// AG-UI's protobuf framing (docs/PROTOCOLS.md, "AG-UI"): one event, given as
// the JSON object the SSE framing sends, as a 4-byte big-endian length and
// the bytes of its `Event` message (proto/ag_ui/events.proto). Pure,
// thread-safe.
#ifndef AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_PROTO_H_
#define AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_PROTO_H_

#include <string>

#include "ag_ui/events.pb.h"
#include "gateway/dialects/run_view.h"

namespace agentstream::gateway::dialects {

// The Event of `event` (its "type" picks the message), with `last_event_id`
// (our resume point) in its metadata when not empty. An event type the
// gateway does not send yields an empty Event.
agentstream::ag_ui::Event AgUiEventToProto(const Json& event,
                                           const std::string& last_event_id);

// The frame: length prefix and bytes.
std::string AgUiProtoFrame(const Json& event, const std::string& last_event_id);

}  // namespace agentstream::gateway::dialects

#endif  // AGENTSTREAM_GATEWAY_DIALECTS_AG_UI_PROTO_H_
