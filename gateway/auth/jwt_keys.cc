#include "gateway/auth/jwt_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "gateway/auth/auth_options.h"
#include "gateway/auth/lines.h"
#include "nlohmann/json.hpp"

namespace agentstream::gateway::auth {
namespace {

struct Free {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

std::string LineError(size_t line, std::string_view what) {
  return "line " + std::to_string(line) + ": " + std::string(what);
}

absl::StatusOr<KeySet> Bounded(KeySet set, std::string_view what) {
  if (set.keys.empty()) {
    return absl::InvalidArgumentError("no " + std::string(what));
  }
  if (set.keys.size() > kMaxKeys) {
    return absl::InvalidArgumentError("more than " + std::to_string(kMaxKeys) +
                                      " keys");
  }
  return set;
}

// Whether `key` is one we accept, and which kind: RSA of at least
// kMinRsaBits, or EC on P-256 (the only curve ES256 uses).
absl::StatusOr<KeyKind> CheckPublicKey(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
      return absl::InvalidArgumentError("an RSA key of fewer than " +
                                        std::to_string(kMinRsaBits) + " bits");
    }
    return KeyKind::kRsa;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), &len) != 1 ||
        std::string_view(group, len) != "prime256v1") {
      return absl::InvalidArgumentError("an EC key not on P-256");
    }
    return KeyKind::kEcP256;
  }
  return absl::InvalidArgumentError("neither an RSA nor an EC key");
}

// The key as PEM SubjectPublicKeyInfo, after OpenSSL's own public-key check.
absl::StatusOr<VerificationKey> ToVerificationKey(EVP_PKEY* key) {
  absl::StatusOr<KeyKind> kind = CheckPublicKey(key);
  if (!kind.ok()) return kind.status();
  Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (ctx == nullptr || EVP_PKEY_public_check(ctx.get()) != 1) {
    return absl::InvalidArgumentError("a public key that fails its check");
  }
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return absl::InternalError("cannot write a public key as PEM");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  VerificationKey out;
  out.kind = *kind;
  out.material = std::string(data, static_cast<size_t>(n));
  return out;
}

absl::StatusOr<std::string> Base64UrlField(const nlohmann::json& jwk,
                                           const char* name) {
  const auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) {
    return absl::InvalidArgumentError(std::string("no string `") + name + "`");
  }
  std::string out;
  if (!absl::WebSafeBase64Unescape(it->get<std::string>(), &out) ||
      out.empty()) {
    return absl::InvalidArgumentError(std::string("`") + name +
                                      "` is not base64url");
  }
  return out;
}

// EVP_PKEY_fromdata (OpenSSL 3): builds the public key from its parameters.
absl::StatusOr<VerificationKey> FromParams(const char* type,
                                           OSSL_PARAM_BLD* bld) {
  Owned<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld));
  Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (params == nullptr || ctx == nullptr ||
      EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) !=
          1) {
    return absl::InvalidArgumentError(std::string("not a valid ") + type +
                                      " public key");
  }
  Owned<EVP_PKEY> key(raw);
  return ToVerificationKey(key.get());
}

absl::StatusOr<VerificationKey> RsaJwk(const nlohmann::json& jwk) {
  absl::StatusOr<std::string> n = Base64UrlField(jwk, "n");
  if (!n.ok()) return n.status();
  absl::StatusOr<std::string> e = Base64UrlField(jwk, "e");
  if (!e.ok()) return e.status();
  auto bn = [](const std::string& s) {
    return Owned<BIGNUM>(BN_bin2bn(reinterpret_cast<const uint8_t*>(s.data()),
                                   static_cast<int>(s.size()), nullptr));
  };
  Owned<BIGNUM> bn_n = bn(*n);
  Owned<BIGNUM> bn_e = bn(*e);
  Owned<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (bn_n == nullptr || bn_e == nullptr || bld == nullptr ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) !=
          1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) !=
          1) {
    return absl::InternalError("cannot build RSA parameters");
  }
  return FromParams("RSA", bld.get());
}

absl::StatusOr<VerificationKey> EcJwk(const nlohmann::json& jwk) {
  const auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string() || *crv != "P-256") {
    return absl::InvalidArgumentError("`crv` is not P-256");
  }
  absl::StatusOr<std::string> x = Base64UrlField(jwk, "x");
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = Base64UrlField(jwk, "y");
  if (!y.ok()) return y.status();
  // RFC 7518 6.2.1.2 wants exactly 32 bytes, but some writers (Python's
  // jwt 2.6 among them) drop leading zero bytes: the same number, padded
  // back (OpenSSL then checks that the point is on the curve).
  if (x->size() > 32 || y->size() > 32) {
    return absl::InvalidArgumentError("`x` and `y` must be 32 bytes");
  }
  x->insert(0, 32 - x->size(), '\0');
  y->insert(0, 32 - y->size(), '\0');
  // The uncompressed point: 0x04 || x || y (SEC 1, 2.3.3).
  std::string point = "\x04" + *x + *y;
  Owned<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                      "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                       point.data(), point.size()) != 1) {
    return absl::InternalError("cannot build EC parameters");
  }
  return FromParams("EC", bld.get());
}

}  // namespace

std::optional<KeyKind> KeyKindForAlgorithm(std::string_view alg) {
  if (alg == "HS256" || alg == "HS384" || alg == "HS512") {
    return KeyKind::kHmac;
  }
  if (alg == "RS256" || alg == "RS384" || alg == "RS512") {
    return KeyKind::kRsa;
  }
  if (alg == "ES256") return KeyKind::kEcP256;
  return std::nullopt;
}

absl::StatusOr<KeySet> ParseSecretFile(std::string_view contents) {
  KeySet set;
  size_t line_no = 0;
  while (!contents.empty()) {
    ++line_no;
    std::string_view line = TakeLine(&contents);
    while (!line.empty() &&
           (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') continue;
    if (line.size() < kMinHmacSecretBytes) {
      return absl::InvalidArgumentError(LineError(
          line_no, "a secret of fewer than " +
                       std::to_string(kMinHmacSecretBytes) + " bytes"));
    }
    VerificationKey key;
    key.kind = KeyKind::kHmac;
    key.material = std::string(line);
    set.keys.push_back(std::move(key));
  }
  return Bounded(std::move(set), "secret");
}

absl::StatusOr<KeySet> ParsePublicKeyPem(std::string_view contents) {
  static constexpr std::string_view kBegin = "-----BEGIN ";
  static constexpr std::string_view kPublic = "-----BEGIN PUBLIC KEY-----";
  static constexpr std::string_view kEnd = "-----END PUBLIC KEY-----";
  KeySet set;
  size_t at = 0;
  while ((at = contents.find(kBegin, at)) != std::string_view::npos) {
    if (contents.substr(at, kPublic.size()) != kPublic) {
      return absl::InvalidArgumentError(
          "a PEM block other than PUBLIC KEY (a private key? give the public "
          "one: openssl pkey -pubout)");
    }
    const size_t end = contents.find(kEnd, at);
    if (end == std::string_view::npos) {
      return absl::InvalidArgumentError("a PUBLIC KEY block without its end");
    }
    const std::string_view block = contents.substr(at, end + kEnd.size() - at);
    at = end + kEnd.size();
    if (set.keys.size() == kMaxKeys) {
      return absl::InvalidArgumentError("more than " +
                                        std::to_string(kMaxKeys) + " keys");
    }
    Owned<BIO> bio(
        BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
    Owned<EVP_PKEY> key(
        bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)
            : nullptr);
    if (key == nullptr) {
      return absl::InvalidArgumentError("key " +
                                        std::to_string(set.keys.size() + 1) +
                                        ": not a valid PEM public key");
    }
    absl::StatusOr<VerificationKey> k = ToVerificationKey(key.get());
    if (!k.ok()) {
      return absl::InvalidArgumentError(
          "key " + std::to_string(set.keys.size() + 1) + ": " +
          std::string(k.status().message()));
    }
    set.keys.push_back(std::move(*k));
  }
  return Bounded(std::move(set), "PEM public key");
}

absl::StatusOr<KeySet> ParseJwks(std::string_view contents) {
  const nlohmann::json doc =
      nlohmann::json::parse(contents, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    return absl::InvalidArgumentError("not a JWKS: {\"keys\": [...]}");
  }
  const nlohmann::json& keys = doc["keys"];
  if (keys.size() > kMaxKeys) {
    return absl::InvalidArgumentError("more than " + std::to_string(kMaxKeys) +
                                      " keys");
  }
  KeySet set;
  std::set<std::string> kids;
  for (size_t i = 0; i < keys.size(); ++i) {
    const nlohmann::json& jwk = keys[i];
    const std::string where = "keys[" + std::to_string(i) + "]: ";
    if (!jwk.is_object()) {
      return absl::InvalidArgumentError(where + "not an object");
    }
    auto str = [&](const char* name) -> std::optional<std::string> {
      const auto it = jwk.find(name);
      if (it == jwk.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    const std::optional<std::string> use = str("use");
    if (use && *use != "sig") continue;
    const std::optional<std::string> kty = str("kty");
    absl::StatusOr<VerificationKey> key;
    if (kty == "RSA") {
      key = RsaJwk(jwk);
    } else if (kty == "EC") {
      key = EcJwk(jwk);
    } else {
      continue;  // "oct", "OKP", ...: not ours to use.
    }
    if (!key.ok()) {
      return absl::InvalidArgumentError(where +
                                        std::string(key.status().message()));
    }
    key->kid = str("kid").value_or("");
    key->alg = str("alg").value_or("");
    if (key->kid.size() > kMaxClaimBytes) {
      return absl::InvalidArgumentError(where + "`kid` is too long");
    }
    if (!key->alg.empty() && KeyKindForAlgorithm(key->alg) != key->kind) {
      continue;  // An algorithm we do not verify, or not this key's kind.
    }
    if (!key->kid.empty() && !kids.insert(key->kid).second) {
      return absl::InvalidArgumentError(where + "`kid` " + key->kid +
                                        " appears twice");
    }
    set.keys.push_back(std::move(*key));
  }
  return Bounded(std::move(set), "usable key (RSA or EC P-256, use sig)");
}

}  // namespace agentstream::gateway::auth
