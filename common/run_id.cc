#include "common/run_id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"

namespace agentstream {

std::string NewRunId() {
  unsigned char bytes[kRunIdRandomBytes];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    // Blocks only before the kernel's pool is first initialised (early boot).
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // No randomness means no safe id: better to stop than to hand out
      // guessable ones.
      std::perror("getrandom");
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  return "run_" + absl::BytesToHexString(absl::string_view(
                      reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

}  // namespace agentstream
