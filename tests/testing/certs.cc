#include "tests/testing/certs.h"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace agentstream::testing {

absl::Status RunShell(const std::string& command) {
  const std::string with_output = command + " 2>&1";
  FILE* pipe = popen(with_output.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen failed");
  std::string output;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat("`", command, "` failed: ", output));
  }
  return absl::OkStatus();
}

absl::StatusOr<TestCa> TestCa::Create(const std::string& dir,
                                      const std::string& name) {
  TestCa ca;
  ca.dir_ = dir;
  ca.ca_file_ = absl::StrCat(dir, "/", name, "-ca.crt");
  ca.ca_key_ = absl::StrCat(dir, "/", name, "-ca.key");
  if (absl::Status s = RunShell(absl::StrCat(
          "openssl req -x509 -nodes -newkey ec -pkeyopt "
          "ec_paramgen_curve:prime256v1 -days 2 -subj '/CN=",
          name, "' -keyout '", ca.ca_key_, "' -out '", ca.ca_file_, "'"));
      !s.ok()) {
    return s;
  }
  return ca;
}

absl::StatusOr<TlsFiles> TestCa::Issue(
    const std::string& common_name,
    const std::vector<std::string>& sans) const {
  static int serial = 0;
  const std::string base = absl::StrCat(dir_, "/", common_name, "-", ++serial);
  TlsFiles files;
  files.cert_file = base + ".crt";
  files.key_file = base + ".key";
  files.ca_file = ca_file_;
  const std::string ext = base + ".ext";
  {
    std::ofstream out(ext);
    out << "basicConstraints=CA:FALSE\n"
        << "keyUsage=critical,digitalSignature,keyEncipherment\n"
        << "extendedKeyUsage=serverAuth,clientAuth\n";
    if (!sans.empty()) {
      out << "subjectAltName=" << absl::StrJoin(sans, ",") << "\n";
    }
    if (!out) return absl::InternalError("cannot write " + ext);
  }
  if (absl::Status s = RunShell(absl::StrCat(
          "openssl req -new -nodes -newkey ec -pkeyopt "
          "ec_paramgen_curve:prime256v1 -subj '/CN=",
          common_name, "' -keyout '", files.key_file, "' -out '", base,
          ".csr' && openssl x509 -req -days 2 -in '", base, ".csr' -CA '",
          ca_file_, "' -CAkey '", ca_key_, "' -set_serial ", serial,
          " -extfile '", ext, "' -out '", files.cert_file, "'"));
      !s.ok()) {
    return s;
  }
  return files;
}

absl::StatusOr<TlsFiles> TestCa::IssueLoopback(const std::string& name) const {
  return Issue(name, {"DNS:" + name, "DNS:localhost", "IP:127.0.0.1"});
}

}  // namespace agentstream::testing
