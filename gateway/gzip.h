// gzip for the gateway's streams (docs/GATEWAY.md, "Compression"), on
// Debian's zlib:
//
// - GzipOnce: one payload compressed whole (`compress=1`: an update's JSON
//   past the threshold, sent base64-encoded in a readable envelope).
// - GzipStream: one deflate stream per response (`Accept-Encoding: gzip`
//   with --stream-gzip), flushed with Z_SYNC_FLUSH after every write so
//   that the client can decompress everything it has received: nothing is
//   held back in the compressor, so an event still arrives at once.
//
// Not thread-safe per object; GzipOnce is (a compressor per thread).
#ifndef AGENTSTREAM_GATEWAY_GZIP_H_
#define AGENTSTREAM_GATEWAY_GZIP_H_

#include <zlib.h>

#include <memory>
#include <string>
#include <string_view>

namespace agentstream::gateway {

// Whether an Accept-Encoding header value accepts gzip (`gzip` or `*`
// listed without q=0; `x-gzip` too).
bool AcceptsGzip(std::string_view accept_encoding);

// `data` as one gzip member (RFC 1952).
std::string GzipOnce(std::string_view data);

class GzipStream {
 public:
  // A response's compressor: a 4 KiB window and a small hash table keep it
  // at some 16 KiB per stream (zlib's defaults take 256 KiB), while events,
  // which repeat their field names, still compress well.
  static constexpr int kWindowBits = 12;
  static constexpr int kMemLevel = 4;

  // Null when zlib cannot start one (out of memory).
  static std::unique_ptr<GzipStream> Create();
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // Appends the compressed form of `data` to `out`, sync-flushed (or, with
  // `finish`, with the gzip trailer: nothing may follow). False on a zlib
  // error (the stream is then unusable).
  bool Compress(std::string_view data, bool finish, std::string* out);
  bool finished() const { return finished_; }

 private:
  GzipStream() = default;
  z_stream z_{};
  bool finished_ = false;
};

}  // namespace agentstream::gateway

#endif  // AGENTSTREAM_GATEWAY_GZIP_H_
