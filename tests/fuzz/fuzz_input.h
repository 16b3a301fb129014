// Shared by the fuzz targets of tests/fuzz/ (docs/FUZZING.md): a reader that
// cuts a fuzzer's input into parts, and the check that stops a run.
//
// Every target is plain C++ that builds with gcc too: the main build replays
// the seed corpora through the same LLVMFuzzerTestOneInput (replay_main.cc),
// so no clang-only header (FuzzedDataProvider) is used.
#ifndef AGENTSTREAM_TESTS_FUZZ_FUZZ_INPUT_H_
#define AGENTSTREAM_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// A failed check is a finding: print what broke and abort, which libFuzzer
// reports as a crash (and saves the input) and the replay reports as a
// failed test.
#define FUZZ_CHECK(cond, what)                                             \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, \
                   __LINE__, #cond, std::string(what).c_str());            \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

namespace agentstream::fuzz {

// Takes parts from the front of an input. Running out is not an error: every
// part is then empty (or 0), so every input means something.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return rest_.empty(); }

  uint8_t TakeByte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }

  uint64_t TakeU64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | TakeByte();
    return v;
  }

  // One length byte, then up to that many bytes.
  std::string_view TakeString() { return TakeBytes(TakeByte()); }

  std::string_view TakeBytes(size_t n) {
    if (n > rest_.size()) n = rest_.size();
    std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }

  std::string_view TakeRest() { return TakeBytes(rest_.size()); }

 private:
  std::string_view rest_;
};

// Whether `s` is well-formed UTF-8, written as a table of the byte ranges
// each lead byte allows (no overlong forms, no surrogates, nothing past
// U+10FFFF): an oracle that shares no code with the code under test.
inline bool ReferenceUtf8(std::string_view s) {
  size_t i = 0;
  auto in = [&](size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    const auto b = static_cast<unsigned char>(s[i + k]);
    return b >= lo && b <= hi;
  };
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b <= 0x7F) {
      i += 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      if (!in(1, 0x80, 0xBF)) return false;
      i += 2;
    } else if (b == 0xE0) {
      if (!in(1, 0xA0, 0xBF) || !in(2, 0x80, 0xBF)) return false;
      i += 3;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      if (!in(1, 0x80, 0xBF) || !in(2, 0x80, 0xBF)) return false;
      i += 3;
    } else if (b == 0xED) {
      if (!in(1, 0x80, 0x9F) || !in(2, 0x80, 0xBF)) return false;
      i += 3;
    } else if (b == 0xF0) {
      if (!in(1, 0x90, 0xBF) || !in(2, 0x80, 0xBF) || !in(3, 0x80, 0xBF)) {
        return false;
      }
      i += 4;
    } else if (b >= 0xF1 && b <= 0xF3) {
      if (!in(1, 0x80, 0xBF) || !in(2, 0x80, 0xBF) || !in(3, 0x80, 0xBF)) {
        return false;
      }
      i += 4;
    } else if (b == 0xF4) {
      if (!in(1, 0x80, 0x8F) || !in(2, 0x80, 0xBF) || !in(3, 0x80, 0xBF)) {
        return false;
      }
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace agentstream::fuzz

#endif  // AGENTSTREAM_TESTS_FUZZ_FUZZ_INPUT_H_
