#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/ (docs/FUZZING.md).

The seeds are committed; this script is how they were made, so that a seed
in a binary input format (sse_encoder, resume) can be read and changed here.
Each seed is one meaningful case of the target's input format (described at
the top of each TARGET_fuzz.cc). Run it from anywhere; it rewrites the
seeds it knows and leaves other files alone.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def s(b):
    """A length-prefixed string (FuzzInput::TakeString): one length byte."""
    if isinstance(b, str):
        b = b.encode()
    assert len(b) < 256
    return bytes([len(b)]) + b


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# sse_encoder: ops 0 event(id, event, data), 1 comment(text),
# 2 retry(8 bytes, big-endian int64), 3 heartbeat(style byte, json).
def event(i, e, d):
    return b"\x00" + s(i) + s(e) + s(d)


def comment(t):
    return b"\x01" + s(t)


def retry(ms):
    return b"\x02" + (ms & (2**64 - 1)).to_bytes(8, "big")


def heartbeat(as_event, j):
    return b"\x03" + bytes([1 if as_event else 0]) + s(j)


SSE = {
    "update": event("req_1:7", "update", '{"type":"progress","seq":7}'),
    "line_breaks": event("req_1:8", "update", "a\r\nb\rc\nd\n\ne\r\r"),
    "empty_data": event("", "", ""),
    "spaces": event(" req_1:9", "  up", " leading space\n:colon: line"),
    "dirty_fields": event("req\r_1\n:\x003", "up\r\ndate", "x"),
    "unicode": event("req_1:10", "update", "h\xe9llo \U0001F30D\r\n\u2028end"),
    "stream": retry(2000) + comment("connected") + event("req_2:1", "update",
                                                         "{}") +
              heartbeat(True, '{"ts":1}') + heartbeat(False, "") +
              event("", "done", "bye\n"),
    "retry_negative": retry(-5) + retry(2**63 - 1),
    "comment_lines": comment("a\nb\r\nc\r") + event("r:1", "message", "m"),
    "bom": event("", "", "\ufeffdata: inside") + comment("\ufeff"),
}

# chat_request: byte 0 (even POST body, odd GET query string), then the text.
POST = {
    "post_minimal": {"message": "Which accounts look risky?"},
    "post_full": {
        "message": "Is ACC-1042 compliant?",
        "specialists": ["RiskAnalyst", " DataAnalyst ", "RiskAnalyst"],
        "options": {"count": 5, "size": 1024, "rate": 2.5,
                    "nested": {"a": [1, 2.5, None, True, "x"]}},
        "heartbeat": "event",
        "on_disconnect": "cancel",
    },
    "post_nulls": {"message": "hi", "specialists": None, "options": None,
                   "heartbeat": None, "on_disconnect": None},
    "post_bad_types": {"message": "hi", "specialists": "RiskAnalyst"},
    "post_blank": {"message": " \t\n"},
    "post_unicode": {"message": "h\u00e9llo \U0001F30D", "options": {
        "\u00e9": "\u0000"}},
}
GET = {
    "get_full": "message=Which+accounts+look+risky%3F&specialists=RiskAnalyst,"
                "%20DataAnalyst&options=%7B%22count%22%3A3%7D&heartbeat=event"
                "&on_disconnect=continue",
    "get_minimal": "message=hello",
    "get_bad_utf8": "message=%FF%FE",
    "get_repeated": "message=a&specialists=A&specialists=B,A,,&heartbeat=",
    "get_bad_policy": "message=a&on_disconnect=never&options=[1]",
}


def deep(n):
    return '{"message":"m","options":' + '{"a":' * n + "1" + "}" * n + "}"


# resume: header, path id, after, last_event_id (length-prefixed), a byte of
# which query parameters are present (1 after, 2 last_event_id), then the
# opening (0 accepted, 1 finished, 2 timeout; +4 with a resume point) and a
# status code for DecideAttachOpening.
def resume(header="", path="", after="", lei="", present=0, choice=1, code=0):
    return s(header) + s(path) + s(after) + s(lei) + bytes([present, choice,
                                                            code])


RESUME = {
    "header": resume("req_1:7", "req_1", choice=1, code=0),
    "after": resume("", "run.x-1", "42", present=1, choice=5, code=5),
    "max_seq": resume("req_1:18446744073709551615", "req_1", choice=1,
                      code=11),
    "overflow": resume("req_1:18446744073709551616", "req_1"),
    "query": resume("", "r", "", "abc:00012", present=3, choice=0),
    "bad_id": resume("bad id:1", "bad/id", "-1", "x:y", present=3, choice=2),
    "other_run": resume("req_2:3", "req_1", "9", present=1, choice=1,
                        code=14),
    "colons": resume("a:b:5", "a", "00000000000000000001", present=1,
                     choice=4, code=5),
}

STRUCT = {
    "options": {"count": 5, "size": 1024, "rate": 2.5, "name": "x",
                "on": True, "none": None, "list": [1, "a", [], {}]},
    "not_object": [1, "two", None],
    "scalar": "text",
}
STRUCT_RAW = {
    "numbers": '{"big":9007199254740993,"neg":-1e300,"huge":1e999,'
               '"u":18446744073709551615,"f":0.1,"z":-0.0,"e":1E2,'
               '"edge":8999999999999999}',
    "strings": '{"esc":"\\u0000\\n\\"\\\\","u":"\\ud83c\\udf0d","":""}',
    "deep32": '{"a":' * 31 + "[1]" + "}" * 31,
    "deep33": '{"a":' * 32 + "[1]" + "}" * 32,
    "duplicate_keys": '{"a":1,"a":2}',
}

HEADER = ("timestamp,account,counterparty,category,country,channel,direction,"
          "amount\n")
CSV = {
    "docs_example": HEADER +
    '2026-03-01T09:30:00Z,ACC-1042,"Acme, Inc.",groceries,US,card,debit,42.50\n'
    "2026-03-02 10:00:00,ACC-1042,Payroll Co,payroll,US,ach,credit,5000\n"
    "2026-03-03,ACC-7,Cash - Branch 12,cash,US,cash,credit,9500.99\n",
    "reordered": "\ufeffId,Amount,Direction,Channel,Country,Category,"
                 "Counterparty,Account,Timestamp\r\n"
                 '1,0.5,CREDIT,Wire,de,Travel,"Say ""hi""",a.b_c-1,'
                 "2026-03-01T11:30:00+02:00\r\n\r\n"
                 '2, 7 ,debit,ACH,fr,FOOD, x ,Z,2024-02-29\r\n',
    "bad_amount": HEADER + "2026-03-01,ACC-1,X,c,US,card,debit,-5\n",
    "bad_quote": HEADER + '2026-03-01,ACC-1,"X"y,c,US,card,debit,5\n',
    "missing_column": "timestamp,account\n2026-03-01,ACC-1\n",
    "header_only": HEADER,
    "offsets": HEADER +
    "2026-03-01T00:00:00-23:59,ACC-1,X,c,US,card,debit,0.01\n"
    "1999-12-31T23:59:59.999+05:30,ACC-1,X,c,US,card,debit,999999999999999\n",
    "year_edges": HEADER +
    "0000-01-01T00:00:00+23:59,ACC-1,X,c,US,card,debit,1\n"
    "9999-12-31T23:59:59-23:59,ACC-1,X,c,US,card,debit,1\n"
    "9999-12-31T23:59:60-23:59,ACC-1,X,c,US,card,debit,1\n"
    "0000-01-01T00:00:00+23:59:59,ACC-1,X,c,US,card,debit,1\n"
    "9999-12-31T23:59:60-23:59:59,ACC-1,X,c,US,card,debit,1\n",
    "year_five_digits": HEADER + "20260-03-01,ACC-1,X,c,US,card,debit,1\n",
}

CARDS = (
    "C DataAnalyst|Data Analyst|data,totals,trend,trends,spending,"
    "transactions,cash flow,account,history|totals,monthly trend,sql|\n"
    "C RiskAnalyst|Risk Analyst|risk,risky,exposure,concentration,"
    "credit risk,country,countries|volatility,risk scoring|\n"
    "C ComplianceExpert|Compliance Expert|aml,compliance,money laundering,"
    "laundering,sanctions,personal data,gdpr|regulation|\n"
    "C Synthetic|Synthetic Load|synthetic,benchmark,load,test|"
    "load generation|x\n")
PLANNER = {
    "keywords": "Q Which accounts show risky transactions?\n" + CARDS,
    "phrases": "Q Any money laundering or credit-risk exposure in "
               "ACC-1042's cash flows?\n" + CARDS,
    "forced": "Q Run the benchmark\n" + CARDS + "F riskanalyst\nF  Synthetic \n"
              "F \n",
    "unknown_forced": "Q hello\n" + CARDS + "F Nobody\n",
    "no_match": "Q hello there\n" + CARDS,
    "no_data_analyst": "Q hello\nC A|||s|\nC B||x|y|\nC C|||z|x\n",
    "all_explicit": "Q hello\nC A|||s|x\n",
    "no_cards": "Q hello\n",
    "blank": "Q  \t\nQ \n" + CARDS,
    "stems": "Q The nations' rating of exposures, stations and analyses "
             "laundered by classes\nQ second line: e's ies ation sses\n"
             "C X||exposure,ratings,station,analysis,launder,class,e,ies|"
             "|\n",
}


# auth_token: flags (1 query allowed, 2 a second Authorization field, 4 an
# Authorization field, 8 issuer checked, 16 audience checked), mode (0 JWT,
# 1 opaque token, 2 token file, 3 JWKS), Authorization, Cookie and query
# (length-prefixed), then the rest. JWTs are HS256 with the target's secret.
AUTH_SECRET = b"fuzz-secret-0123456789abcdefghijk"
KNOWN_TOKEN = ("ast_0123456789abcdef_"
               "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
KNOWN_LINE = ("0123456789abcdef ci-bot agentstream:metrics,read "
              "6465666768696a6b6c6d6e6f70717273 "
              "b5b7acda24b967eacdce57c3e25699e6b8156e9379cd3907829a54ae4266415d\n")
EC_JWK = {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig",
          "x": "K8xWVBipU49qoXJoQE5GHAmumU8RP_f7dQk49708si0",
          "y": "5ngPcg16G1oLU_xvbL5f2Fi7aEVvtfDq_cJbkT73D5U"}


def b64url(b):
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_hs256(claims, alg="HS256", key=AUTH_SECRET):
    import hashlib
    import hmac
    msg = (b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." +
           b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(key, msg.encode(), hashlib.sha256).digest()
    return msg + "." + b64url(sig)


def auth(flags=0, mode=0, authorization="", cookie="", query="", rest=b""):
    if isinstance(rest, str):
        rest = rest.encode()
    return bytes([flags, mode]) + s(authorization) + s(cookie) + s(query) + rest


def auth_seeds():
    good = {"sub": "alice", "exp": 4102444800, "iss": "https://idp.example",
            "aud": ["x", "agentstream"], "scope": "read agentstream:admin"}
    short = {"sub": "alice", "exp": 4102444800}
    expired = dict(short, exp=1600000000)
    later = dict(short, nbf=1800000000)
    return {
        "jwt_full": auth(8 | 16, 0, rest=jwt_hs256(good)),
        "jwt_header": auth(4, 0, "Bearer " + jwt_hs256(short)),
        "jwt_cookie": auth(0, 0, "", "a=1; agentstream_token=" +
                           jwt_hs256({"sub": "bob", "exp": 4102444800,
                                      "scp": ["agentstream:metrics"]})),
        "jwt_query": auth(1, 0, "", "", "x=1&access_token=" +
                          jwt_hs256({"sub": "q", "exp": 4102444800})),
        "jwt_expired": auth(4, 0, "bearer " + jwt_hs256(expired)),
        "jwt_not_yet": auth(4, 0, "Bearer " + jwt_hs256(later)),
        "jwt_none": auth(0, 0, rest=jwt_hs256(good, alg="none")[:-43]),
        "jwt_wrong_key": auth(0, 0, rest=jwt_hs256(good, key=b"k" * 32)),
        "jwt_bad_json": auth(0, 0, rest="eyJhbGciOiJIUzI1NiJ9.e30K.AAAA"),
        "two_headers": auth(4 | 2, 0, "Bearer abc"),
        "basic": auth(4, 0, "Basic dXNlcjpwYXNz"),
        "quoted_cookie": auth(0, 1, "", 'agentstream_token="' + KNOWN_TOKEN[:100] + '"'),
        "opaque_header": auth(4, 1, "Bearer " + KNOWN_TOKEN),
        "opaque_wrong": auth(4, 1, "Bearer " + KNOWN_TOKEN[:-1] + "0"),
        "token_file": auth(0, 2, rest="# tokens\n\n" + KNOWN_LINE),
        "token_file_bad": auth(0, 2, rest=KNOWN_LINE + KNOWN_LINE + "x y\n"),
        "jwks": auth(0, 3, rest=json.dumps({"keys": [EC_JWK]})),
        "jwks_off_curve": auth(0, 3, rest=json.dumps(
            {"keys": [dict(EC_JWK, y=EC_JWK["x"])]})),
    }


# dialect_request: a byte choosing the dialect (0: AG-UI), then the body.
DIALECT = {
    "ag_ui_minimal": (0, {
        "threadId": "t", "runId": "r", "state": {}, "tools": [],
        "context": [], "forwardedProps": {},
        "messages": [{"id": "u1", "role": "user",
                      "content": "Assess ACC-1042"}]}),
    "ag_ui_parts": (0, {
        "messages": [{"role": "user",
                      "content": [{"type": "text", "text": "a"},
                                  {"type": "text", "text": "b"}]}],
        "forwardedProps": {"specialists": ["DataAnalyst"],
                           "options": {"count": 3},
                           "on_disconnect": "cancel"}}),
    "ag_ui_no_user": (0, {"messages": [{"role": "assistant",
                                        "content": "x"}]}),
    "ag_ui_control": (0, {"threadId": "\u0001",
                          "messages": [{"role": "user", "content": "x"}]}),
}


def main():
    for name, (which, body) in DIALECT.items():
        write("dialect_request", name,
              bytes([which]) + json.dumps(body, ensure_ascii=False).encode())
    for name, data in SSE.items():
        write("sse_encoder", name, data)
    for name, body in POST.items():
        text = json.dumps(body, ensure_ascii=False)
        write("chat_request", name, b"\x00" + text.encode())
    write("chat_request", "post_not_object", b"\x00[1,2]")
    write("chat_request", "post_deep_options", b"\x00" + deep(32).encode())
    write("chat_request", "post_too_deep", b"\x00" + deep(33).encode())
    for name, query in GET.items():
        write("chat_request", name, b"\x01" + query.encode())
    for name, data in RESUME.items():
        write("resume", name, data)
    for name, value in STRUCT.items():
        write("struct_json", name, json.dumps(value))
    for name, text in STRUCT_RAW.items():
        write("struct_json", name, text)
    for name, text in CSV.items():
        write("csv_loader", name + ".csv", text)
    for name, text in PLANNER.items():
        write("planner", name, text)
    for name, data in auth_seeds().items():
        write("auth_token", name, data)


if __name__ == "__main__":
    main()
