// The terminal client's process-level pieces: SIGINT counted by a handler
// that only bumps an atomic counter (nothing else is safe there), the
// terminal's size, and the yes/no question a Ctrl-C asks.
#ifndef AGENTSTREAM_GATEWAY_CLI_TERMINAL_H_
#define AGENTSTREAM_GATEWAY_CLI_TERMINAL_H_

#include <string_view>

namespace agentstream::cli {

// Installs the SIGINT handler, without SA_RESTART so that a blocked read of
// the answer returns EINTR on a second Ctrl-C.
void InstallSigintHandler();
// SIGINTs received since the start.
int SigintCount();

// The terminal's columns and rows on `fd` (80 x 24 when it does not say).
int TerminalColumns(int fd);
int TerminalRows(int fd);

enum class Answer { kYes, kNo, kInterrupted };
// Writes `question` to stderr and reads a line from stdin: kYes for "y" or
// "yes" (any case), kInterrupted when a SIGINT came while waiting, kNo
// otherwise (end of input included).
Answer AskYesNo(std::string_view question);

}  // namespace agentstream::cli

#endif  // AGENTSTREAM_GATEWAY_CLI_TERMINAL_H_
