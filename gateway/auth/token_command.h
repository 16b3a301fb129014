// `gateway token ...`: makes and lists the entries of an --auth=token file
// (token_file.h; docs/SECURITY.md, "Issuing tokens").
//
//   gateway token add --file FILE --name NAME [--scope S]...
//       Appends a new entry (creating FILE with mode 0600) and prints the
//       token, once, on stdout: it is stored nowhere.
//   gateway token list --file FILE
//       One line per entry: id, name, scopes (never salts or hashes).
#ifndef AGENTSTREAM_GATEWAY_AUTH_TOKEN_COMMAND_H_
#define AGENTSTREAM_GATEWAY_AUTH_TOKEN_COMMAND_H_

namespace agentstream::gateway::auth {

// argv[0] is "token", argv[1] the subcommand. Returns the process's exit
// code: 0 done, 1 failed (message on stderr), 2 usage error.
int RunTokenCommand(int argc, char** argv);

}  // namespace agentstream::gateway::auth

#endif  // AGENTSTREAM_GATEWAY_AUTH_TOKEN_COMMAND_H_
