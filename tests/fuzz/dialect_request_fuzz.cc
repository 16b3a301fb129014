// Fuzz target: the dialects' request bodies (gateway/dialects/,
// docs/PROTOCOLS.md), from the bytes a client of AG-UI sends to the chat
// request the gateway runs.
//
// Input: one byte choosing the dialect (the rest of its value is ignored),
// then the body. For every input:
//   - errors are kInvalidArgument or kOutOfRange (over the body limit) only;
// for every accepted body:
//   - the chat request keeps ChatRequestFromJson's rules: a non-empty
//     message, at most kMaxSpecialists names, options an object;
//   - the client's names are within kMaxAgUiIdBytes, without control
//     characters;
//   - the body parses to the same request again (no hidden state).
#include <cstdint>
#include <string>

#include "gateway/chat_request.h"
#include "gateway/dialects/ag_ui_request.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

namespace gw = agentstream::gateway;
namespace dialects = agentstream::gateway::dialects;

void CheckStatus(const absl::Status& status, const std::string& body) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument ||
                 status.code() == absl::StatusCode::kOutOfRange,
             status.ToString() + " for " + body.substr(0, 200));
}

void CheckChat(const gw::ChatRequest& chat) {
  FUZZ_CHECK(!chat.message.empty(), "an empty message accepted");
  FUZZ_CHECK(chat.specialists.size() <= gw::kMaxSpecialists,
             "too many specialists accepted");
  FUZZ_CHECK(chat.options.is_object(), "options not an object");
}

void CheckName(const std::string& name) {
  FUZZ_CHECK(name.size() <= dialects::kMaxAgUiIdBytes, "a name over the bound");
  for (unsigned char c : name) {
    FUZZ_CHECK(c >= 0x20 && c != 0x7f, "a control character in a name");
  }
}

void AgUi(const std::string& body) {
  auto input = dialects::ParseAgUiInput(body);
  if (!input.ok()) return CheckStatus(input.status(), body);
  CheckChat(input->chat);
  CheckName(input->names.thread_id);
  CheckName(input->names.run_id);
  auto again = dialects::ParseAgUiInput(body);
  FUZZ_CHECK(again.ok() && again->chat.message == input->chat.message &&
                 again->chat.specialists == input->chat.specialists,
             "the same body parsed differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  agentstream::fuzz::FuzzInput in(data, size);
  const uint8_t which = in.TakeByte();
  const std::string body(in.TakeRest());
  switch (which % 1) {
    default:
      AgUi(body);
      break;
  }
  return 0;
}
