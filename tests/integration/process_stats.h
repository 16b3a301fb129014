// What /proc says of a running process, for specialist_stream_test and
// specialist_load (which links no test library). Header-only.
#ifndef AGENTSTREAM_TESTS_INTEGRATION_PROCESS_STATS_H_
#define AGENTSTREAM_TESTS_INTEGRATION_PROCESS_STATS_H_

#include <dirent.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace agentstream::testing {

// The number of threads of process `pid` (entries of /proc/PID/task); 0 if
// it cannot be read.
inline int ThreadCount(int64_t pid) {
  int n = 0;
  const std::string path = absl::StrCat("/proc/", pid, "/task");
  if (DIR* dir = opendir(path.c_str()); dir != nullptr) {
    while (dirent* entry = readdir(dir)) n += entry->d_name[0] != '.';
    closedir(dir);
  }
  return n;
}

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_INTEGRATION_PROCESS_STATS_H_
