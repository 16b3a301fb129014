// GatewayServer::Impl, the AG-UI dialect (docs/PROTOCOLS.md, "AG-UI"):
// POST /api/ag-ui starts a run from a RunAgentInput and streams it as AG-UI
// events; the same POST with Last-Event-ID resumes the run it names.
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/run_id.h"
#include "gateway/dialects/ag_ui_encoder.h"
#include "gateway/dialects/ag_ui_request.h"
#include "gateway/resume.h"
#include "gateway/server_impl.h"

namespace agentstream::gateway {

void GatewayServer::Impl::HandleAgUi(const ExchangePtr& ex) {
  using dialects::AgUiEncoder;
  const http::HttpRequest& req = ex->request();
  const std::string correlation_id = RequestIdFor(req);
  std::optional<OnBehalfOf> who = Authenticate(ex, Need::kUser, correlation_id);
  if (!who) return;
  absl::StatusOr<dialects::AgUiInput> input =
      dialects::ParseAgUiInput(req.body);
  if (!input.ok()) return SendError(ex, input.status(), correlation_id);
  const dialects::AgUiFraming framing =
      dialects::AgUiFramingFor(req.headers.GetOr("Accept"));
  auto resume = ChatResumePoint(req.headers.GetOr("Last-Event-ID"),
                                http::ParseQuery(req.query));
  if (!resume.ok()) return SendError(ex, resume.status(), correlation_id);
  // The client's names for the run; ours when it gave none.
  auto names_for = [&input](const std::string& rid) {
    dialects::AgUiRunNames names = input->names;
    if (names.thread_id.empty()) names.thread_id = absl::StrCat("thread_", rid);
    if (names.run_id.empty()) names.run_id = rid;
    return names;
  };
  if (resume->has_value()) {
    const ResumePoint& point = **resume;
    AttachTarget target{.request_id = point.request_id,
                        .after_seq = point.after_seq,
                        .has_resume_point = true};
    // From the run's start: the encoder folds the updates up to the
    // client's point into the state and sends what follows.
    return ServeAttach(ex, target, *who,
                       std::make_unique<AgUiEncoder>(
                           point.request_id, names_for(point.request_id),
                           framing, point.after_seq),
                       /*attach_after_seq=*/0);
  }
  const std::string rid = NewRunId();
  StartRun(ex, correlation_id, *who, input->chat,
           std::make_unique<AgUiEncoder>(rid, names_for(rid), framing));
}

}  // namespace agentstream::gateway
