// Internal to the SDK: Specialist.AnalyzeSession, many analyses as streams
// of one bidi call (docs/CONTRACT.md, "Specialist sessions"). Not for
// specialist authors: SpecialistService serves it.
//
// Each stream is a SpecialistService::Call like an AnalyzeBatched call's
// (the same analysis, queue, cancellation and endings), framed for the
// session instead of its own call: the stream takes from its queue at most
// its credit (AnalyzeSessionOpen.window_bytes, then SessionCredits; past it
// by one batch at most), and the session packs the batches and endings of
// the streams that have one into a SessionMessage (one write in flight, up
// to kMaxMessageBytes). A stream's first frame with updates says
// `accepted`; an analysis refused before it started (invalid request,
// shutting down) is an `end` alone. SessionClose cancels that analysis;
// the client half-closing or cancelling the session cancels them all, and
// the session ends (OK) once every stream's end was written.
#ifndef AGENTSTREAM_SPECIALISTS_SDK_ANALYZE_SESSION_H_
#define AGENTSTREAM_SPECIALISTS_SDK_ANALYZE_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>

#include "agentstream/v1/session.pb.h"
#include "agentstream/v1/specialist.pb.h"
#include "specialists/sdk/specialist_service.h"

namespace agentstream::specialists {

// A stream's window when the client asks none (0), and the most it may ask.
inline constexpr uint64_t kDefaultSessionWindowBytes = uint64_t{1} << 20;
inline constexpr uint64_t kMaxSessionWindowBytes = uint64_t{16} << 20;
// A SessionMessage is packed up to about this size (a single larger batch
// goes alone).
inline constexpr size_t kMaxMessageBytes = 256 * 1024;

// Starts serving one AnalyzeSession call; gRPC owns the reactor until its
// OnDone.
grpc::ServerBidiReactor<agentstream::v1::AnalyzeSessionRequest,
                        agentstream::v1::SessionMessage>*
StartAnalyzeSession(SpecialistService* service,
                    grpc::CallbackServerContext* context);

}  // namespace agentstream::specialists

#endif  // AGENTSTREAM_SPECIALISTS_SDK_ANALYZE_SESSION_H_
