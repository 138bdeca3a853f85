#!/usr/bin/env python3
"""Writes the committed seed corpus of fuzz_proto into tests/fuzz/corpus/proto.

Each input is one byte choosing the reader's chunk size, then a byte stream
as a peer would send it: valid requests and events, then hostile frames.
Run from the source tree: python3 tests/fuzz/mkcorpus_proto.py
The lf-* files beside them are small inputs a libFuzzer run found to reach
new code (kept by hand, not written here).
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "client"))
import ktxwire  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "proto")
TEXT = "line\n\ttab \u4e2d\u6587 \U0001F600 \"q\""

VALID = {
    "req-hello": {"op": "hello", "id": 1, "version": 1, "client": "ktxctl 0.1.0"},
    "req-ask": {"op": "ask", "id": 2, "prompt": TEXT, "conversation": "last",
                "max_tokens": 64, "temperature": 0.7, "top_p": 0.9, "seed": 42,
                "detached": False},
    "req-submit": {"op": "submit", "id": 3, "prompt": "x", "conversation": "notes"},
    "req-cancel": {"op": "cancel", "id": 4, "job": 17},
    "req-status": {"op": "status", "id": 5},
    "req-ps": {"op": "ps", "id": 6},
    "req-history": {"op": "history", "id": 7, "all": True, "limit": 10},
    "req-show": {"op": "show", "id": 8, "conversation": "12"},
    "req-rm": {"op": "rm", "id": 9, "conversation": "12"},
    "req-jobs": {"op": "jobs", "id": 10},
    "req-result": {"op": "result", "id": 11, "job": 17},
    "req-wait": {"op": "wait", "id": 12, "job": 17},
    "req-ping": {"op": "ping", "id": 13},
    "ev-welcome": {"ev": "welcome", "id": 1, "version": 1, "server": "ktxd 0.1.0",
                   "frame_max": 8 << 20, "prompt_max": 4 << 20, "model": "tiny", "ctx": 4096},
    "ev-stream": None,  # filled below: queued, started, tokens, done
    "ev-error": {"ev": "error", "id": 2, "code": "busy", "message": "the queue is full"},
    "ev-status": {"ev": "status", "id": 5, "server": "ktxd", "model": "m", "state": "ready",
                  "progress": 1.0, "uptime": 5, "ram": 1 << 30, "tok_s": 12.5},
    "ev-result": {"ev": "result", "id": 11, "job": 17, "state": "done", "text": TEXT,
                  "prompt_tokens": 5, "gen_tokens": 9, "decode_tps": 3.5},
    "ev-turn": {"ev": "turn", "id": 8, "role": "user", "text": TEXT, "time": 1700000000},
}

STREAM = [
    {"ev": "queued", "id": 2, "job": 5, "position": 2},
    {"ev": "started", "id": 2, "job": 5, "conversation": 3},
    {"ev": "token", "id": 2, "text": "Hel"},
    {"ev": "token", "id": 2, "text": "lo \u4e16\u754c"},
    {"ev": "done", "id": 2, "job": 5, "conversation": 3, "prompt_tokens": 7,
     "gen_tokens": 2, "prefill_tps": 100.0, "decode_tps": 10.0, "reason": "eos"},
    {"ev": "end", "id": 9, "count": 0, "future": [1, {"a": None}]},
]

HOSTILE = {
    "map32-1Mi": b"\xdf\x00\x10\x00\x00\xa2op\xa0\xc0",
    "array32-4Gi": b"\xdd\xff\xff\xff\xff\x00\x00",
    "str32-past-end": b"\x81\xa2op\xdb\xff\xff\xff\xffask",
    "ext32": b"\x81\xa2op\xc9\xff\xff\xff\xff\x01\x00",
    "deep": b"\x91" * 100 + b"\x00",
    "unknown-op": ktxwire.pack({"op": "frobnicate", "id": 3}),
    "wrong-type": ktxwire.pack({"op": "ask", "id": 3, "prompt": 5}),
    "bad-utf8": ktxwire.pack({"op": "ask", "id": 3, "prompt": b"caf\xe9"}),
    "nul": ktxwire.pack({"op": "ask", "id": 3, "prompt": b"a\x00b"}),
    "neg-id": ktxwire.pack({"op": "ping", "id": -5}),
    "nan": ktxwire.pack({"op": "ask", "id": 3, "prompt": "x", "temperature": float("nan")}),
}


def write(name, chunk, stream):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([chunk]) + stream)


def main():
    os.makedirs(OUT, exist_ok=True)
    VALID["ev-stream"] = None
    for i, (name, obj) in enumerate(sorted(VALID.items())):
        if obj is None:
            stream = b"".join(ktxwire.frame(o) for o in STREAM)
        else:
            stream = ktxwire.frame(obj)
        write(name, i * 7 % 64, stream)
    for i, (name, body) in enumerate(sorted(HOSTILE.items())):
        write("bad-" + name, i % 64, struct.pack(">I", len(body)) + body)
    write("bad-prefix-4GiB", 0, b"\xff\xff\xff\xff\x80")
    write("bad-prefix-zero", 3, b"\x00\x00\x00\x00")
    write("truncated", 5, ktxwire.frame(VALID["req-ask"])[:-3])
    write("empty", 0, b"")
    # found by libFuzzer: a prefix completed by the last byte of a chunk
    write("regress-header-at-end", 0, b"\x00\x00\x00\x07\xdd\xff\xff\xff\xff\x00\x00")


if __name__ == "__main__":
    main()
