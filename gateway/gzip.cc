#include "gateway/gzip.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace agentstream::gateway {
namespace {

// windowBits + 16: a gzip header and trailer instead of zlib's.
constexpr int kGzipWrapper = 16;

// Runs deflate over all of `in` with `flush`, appending to `out`.
bool Deflate(z_stream* z, std::string_view in, int flush, std::string* out) {
  z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z->avail_in = static_cast<uInt>(in.size());
  char buffer[16 * 1024];
  while (true) {
    z->next_out = reinterpret_cast<Bytef*>(buffer);
    z->avail_out = sizeof(buffer);
    const int rc = deflate(z, flush);
    if (rc == Z_STREAM_ERROR) return false;
    out->append(buffer, sizeof(buffer) - z->avail_out);
    if (flush == Z_FINISH) {
      if (rc == Z_STREAM_END) return true;
      continue;  // More output to come.
    }
    // Done once deflate left output room: all input taken and flushed.
    if (z->avail_out != 0 && z->avail_in == 0) return true;
  }
}

// A compressor kept by each thread, reset for every payload (deflateInit
// allocates some 256 KiB; large updates are frequent enough to keep one).
struct OnceCompressor {
  OnceCompressor() {
    ok = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                      MAX_WBITS + kGzipWrapper, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~OnceCompressor() {
    if (ok) deflateEnd(&z);
  }
  z_stream z{};
  bool ok = false;
};

}  // namespace

bool AcceptsGzip(std::string_view accept_encoding) {
  bool gzip = false, star = false, gzip_listed = false;
  size_t start = 0;
  while (start <= accept_encoding.size()) {
    size_t end = accept_encoding.find(',', start);
    if (end == std::string_view::npos) end = accept_encoding.size();
    std::string_view item = accept_encoding.substr(start, end - start);
    start = end + 1;
    // "coding;q=0.5": the coding, then whether its q is zero.
    const size_t semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    auto trim = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
      }
      while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
      }
      return s;
    };
    coding = trim(coding);
    bool zero = false;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      const size_t q = params.find("q=");
      if (q != std::string_view::npos) {
        std::string_view value = trim(params.substr(q + 2));
        // q=0, q=0.0, q=0.000: zero; anything else is some preference.
        zero = !value.empty() && value[0] == '0' &&
               value.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    auto equals = [](std::string_view a, std::string_view b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) {
          return false;
        }
      }
      return true;
    };
    if (equals(coding, "gzip") || equals(coding, "x-gzip")) {
      gzip_listed = true;
      gzip = !zero;
    } else if (coding == "*") {
      star = !zero;
    }
    if (end == accept_encoding.size()) break;
  }
  return gzip_listed ? gzip : star;
}

std::string GzipOnce(std::string_view data) {
  thread_local OnceCompressor compressor;
  std::string out;
  if (!compressor.ok) return out;
  deflateReset(&compressor.z);
  out.reserve(data.size() / 2 + 64);
  if (!Deflate(&compressor.z, data, Z_FINISH, &out)) out.clear();
  return out;
}

std::unique_ptr<GzipStream> GzipStream::Create() {
  std::unique_ptr<GzipStream> stream(new GzipStream());
  if (deflateInit2(&stream->z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                   kWindowBits + kGzipWrapper, kMemLevel,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return nullptr;
  }
  return stream;
}

GzipStream::~GzipStream() { deflateEnd(&z_); }

bool GzipStream::Compress(std::string_view data, bool finish,
                          std::string* out) {
  if (finished_) return false;
  finished_ = finish;
  return Deflate(&z_, data, finish ? Z_FINISH : Z_SYNC_FLUSH, out);
}

}  // namespace agentstream::gateway
