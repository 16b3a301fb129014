// Test helpers for gzip (the gateway's compression): a whole gzip member
// inflated, and an inflater fed piece by piece. Header-only; link zlib.
#ifndef AGENTSTREAM_TESTS_TESTING_GUNZIP_H_
#define AGENTSTREAM_TESTS_TESTING_GUNZIP_H_

#include <zlib.h>

#include <string>
#include <string_view>

namespace agentstream::testing {

// Inflates gzip data fed in pieces; `out` holds everything decodable so far.
class GzipInflater {
 public:
  GzipInflater() { ok_ = inflateInit2(&z_, MAX_WBITS + 16) == Z_OK; }
  ~GzipInflater() {
    if (ok_) inflateEnd(&z_);
  }
  GzipInflater(const GzipInflater&) = delete;
  GzipInflater& operator=(const GzipInflater&) = delete;

  // Returns zlib's last code: Z_OK or Z_BUF_ERROR (wants more),
  // Z_STREAM_END, or an error.
  int Feed(std::string_view in) {
    if (!ok_) return Z_STREAM_ERROR;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    char buffer[4096];
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buffer);
      z_.avail_out = sizeof(buffer);
      rc = inflate(&z_, Z_SYNC_FLUSH);
      out.append(buffer, sizeof(buffer) - z_.avail_out);
    } while (rc == Z_OK && (z_.avail_in > 0 || z_.avail_out == 0));
    return rc;
  }
  std::string out;

 private:
  z_stream z_{};
  bool ok_ = false;
};

// A whole gzip member; empty when it is not one.
inline std::string Gunzip(std::string_view gz) {
  GzipInflater inflater;
  return inflater.Feed(gz) == Z_STREAM_END ? inflater.out : std::string();
}

}  // namespace agentstream::testing

#endif  // AGENTSTREAM_TESTS_TESTING_GUNZIP_H_
