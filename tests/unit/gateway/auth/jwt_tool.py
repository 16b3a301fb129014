#!/usr/bin/python3
"""Makes keys and JSON Web Tokens for the gateway/auth tests with tools
independent of the code under test: Python's jwt (Debian's python3-jwt)
and cryptography, and the standard library's hmac for the two tokens jwt
refuses to make (alg none, and the key-confusion forgery).

  jwt_tool.py check                      exit 0 when jwt and cryptography import
  jwt_tool.py keys DIR                   rsa.pem/.pub, rsa2.pem/.pub, ec.pem/.pub,
                                         rsa1024.pub, jwks.json (kids rsa-1,
                                         ec-1), jwks2.json (kid rsa-2),
                                         ec0.pem/.pub and jwks_short.json
                                         (an x written without its leading
                                         zero byte)
  jwt_tool.py sign ALG KEYFILE CLAIMS [KID]
                                         a token signed with KEYFILE's bytes
                                         (a PEM private key, or a secret)
  jwt_tool.py forge-hs256 KEYFILE CLAIMS an HS256 token whose HMAC key is
                                         KEYFILE's bytes, e.g. a public key
  jwt_tool.py none CLAIMS                an unsigned token (alg none)
CLAIMS is a JSON object. Tokens are printed on stdout.
"""
import base64
import hashlib
import hmac
import json
import os
import sys


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header, claims):
    return (b64(json.dumps(header).encode()) + "." +
            b64(json.dumps(claims).encode()))


def keys(out):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    def write(name, key):
        with open(os.path.join(out, name + ".pem"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(os.path.join(out, name + ".pub"), "wb") as f:
            f.write(key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo))
        return key.public_key()

    rsa1 = write("rsa", rsa.generate_private_key(65537, 2048))
    rsa2 = write("rsa2", rsa.generate_private_key(65537, 2048))
    ec1 = write("ec", ec.generate_private_key(ec.SECP256R1()))
    write("rsa1024", rsa.generate_private_key(65537, 1024))

    def jwk(alg, key, kid):
        d = json.loads(alg.to_jwk(key))
        d["kid"] = kid
        d["use"] = "sig"
        return d

    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump({"keys": [jwk(RSAAlgorithm, rsa1, "rsa-1"),
                            jwk(ECAlgorithm, ec1, "ec-1")]}, f)
    with open(os.path.join(out, "jwks2.json"), "w") as f:
        json.dump({"keys": [jwk(RSAAlgorithm, rsa2, "rsa-2")]}, f)

    # An EC key whose x has a leading zero byte, written as some libraries
    # do (and RFC 7518 forbids): without it.
    while True:
        key = ec.generate_private_key(ec.SECP256R1())
        x = key.public_key().public_numbers().x
        if x < 1 << 248:
            break
    write("ec0", key)
    d = jwk(ECAlgorithm, key.public_key(), "ec-short")
    d["x"] = b64(x.to_bytes(31, "big").lstrip(b"\0"))
    with open(os.path.join(out, "jwks_short.json"), "w") as f:
        json.dump({"keys": [d]}, f)


def main(argv):
    cmd = argv[1]
    if cmd == "check":
        import cryptography  # noqa: F401
        import jwt  # noqa: F401
    elif cmd == "keys":
        keys(argv[2])
    elif cmd == "sign":
        import jwt
        alg, keyfile, claims = argv[2], argv[3], json.loads(argv[4])
        headers = {"kid": argv[5]} if len(argv) > 5 else None
        with open(keyfile, "rb") as f:
            key = f.read()
        print(jwt.encode(claims, key, algorithm=alg, headers=headers))
    elif cmd == "forge-hs256":
        with open(argv[2], "rb") as f:
            key = f.read()
        msg = unsigned({"alg": "HS256", "typ": "JWT"}, json.loads(argv[3]))
        sig = hmac.new(key, msg.encode(), hashlib.sha256).digest()
        print(msg + "." + b64(sig))
    elif cmd == "none":
        print(unsigned({"alg": "none", "typ": "JWT"}, json.loads(argv[2])) +
              ".")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
