"""test_tokenizer.py - `ktx-run -m VOCAB --tokenize FILE [--special]` against the oracle.

The command-line contract: the ids of the file's whole content, no BOS,
comma-separated on one line. One case per category (and special flag) of every
oracle case file, and the text of the oracle's shared prompts, go through the
real program; all cases are checked in one process by
tests/unit/test_tokenizer_oracle. Also: text that is not UTF-8 still encodes, an
empty file gives an empty line, and a missing file, a missing vocabulary or one
with an unknown pre-tokenizer fails with exit status 1 and a message.
"""
import json
import os
import struct
import sys
import tempfile

from ktxtest import ORACLE, Tap, program, run

CASE_FILES = [
    ("tokenizer/tokenizer-cases.jsonl", "tokenizer/deepseek-v3.gguf"),
    ("tokenizer/deepseek-v3-cut-cases.jsonl", "tokenizer/deepseek-v3-cut.gguf"),
    ("tokenizer/vocab-deepseek-llm/cases.jsonl",
     "tokenizer/vocab-deepseek-llm/ggml-vocab-deepseek-llm.gguf"),
    ("tokenizer/vocab-deepseek-coder/cases.jsonl",
     "tokenizer/vocab-deepseek-coder/ggml-vocab-deepseek-coder.gguf"),
]


def gguf_strings(path, kv):
    """Writes a GGUF (version 3, no tensors) holding the string key/values kv."""
    def s(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for k, v in kv:
        out += s(k) + struct.pack("<I", 8) + s(v)
    with open(path, "wb") as fp:
        fp.write(out)


def tokenize(vocab, data, special, tmpdir):
    """Runs ktx-run --tokenize on bytes data; returns the CompletedProcess."""
    path = os.path.join(tmpdir, "input.txt")
    with open(path, "wb") as fp:
        fp.write(data)
    args = [program("ktx-run"), "-m", vocab, "--tokenize", path]
    if special:
        args.append("--special")
    return run(args)


def main():
    t = Tap()
    with tempfile.TemporaryDirectory() as tmpdir:
        for cases, vocab in CASE_FILES:
            vocab_path = os.path.join(ORACLE, vocab)
            seen = set()
            with open(os.path.join(ORACLE, cases), encoding="utf-8") as fp:
                for line in fp:
                    if not line.strip():
                        continue
                    case = json.loads(line)
                    key = (case.get("category", "all"), case["special"])
                    if key in seen:
                        continue
                    seen.add(key)
                    r = tokenize(vocab_path, case["text"].encode("utf-8"), case["special"], tmpdir)
                    want = ",".join(str(i) for i in case["ids"]) + "\n"
                    got = r.stdout.decode("utf-8", "replace")
                    t.ok(r.returncode == 0 and got == want,
                         "%s %s%s: ktx-run --tokenize prints the oracle's ids"
                         % (cases[len("tokenizer/"):], key[0], " --special" if key[1] else ""),
                         "text: %r\ngot:  %s\nwant: %s\nstderr: %s"
                         % (case["text"][:200], got.strip()[:400], want.strip()[:400],
                            r.stderr.decode("utf-8", "replace").strip()))

        # The token prompts every model test feeds in were made from text.
        with open(os.path.join(ORACLE, "prompts.json"), encoding="utf-8") as fp:
            prompts = json.load(fp)
        cut = os.path.join(ORACLE, "tokenizer", prompts["vocab"])
        for p in prompts["prompts"]:
            if p.get("add_bos"):
                continue
            r = tokenize(cut, p["text"].encode("utf-8"), p["special"], tmpdir)
            want = ",".join(str(i) for i in p["tokens"]) + "\n"
            t.ok(r.returncode == 0 and r.stdout.decode() == want,
                 "prompts.json %s: the oracle's prompt ids from its text" % p["name"],
                 "got:  %s\nwant: %s" % (r.stdout.decode().strip(), want.strip()))

        v3 = os.path.join(ORACLE, "tokenizer/deepseek-v3.gguf")
        r = tokenize(v3, b"ab\xff\xfe\xc3 cd", False, tmpdir)
        ids = r.stdout.decode().strip().split(",")
        t.ok(r.returncode == 0 and len(ids) >= 4 and all(i.isdigit() for i in ids),
             "bytes that are not UTF-8 still encode", r.stderr.decode("utf-8", "replace"))
        r = tokenize(v3, b"", False, tmpdir)
        t.ok(r.returncode == 0 and r.stdout == b"\n", "an empty file gives an empty line",
             repr(r.stdout))
        r = run([program("ktx-run"), "-m", v3, "--tokenize", os.path.join(tmpdir, "absent")])
        t.ok(r.returncode == 1 and b"absent" in r.stderr,
             "a missing input file: exit 1 and a message naming it", r.stderr.decode())
        r = run([program("ktx-run"), "-m", os.path.join(tmpdir, "absent.gguf"),
                 "--tokenize", os.path.join(tmpdir, "input.txt")])
        t.ok(r.returncode == 1 and r.stderr, "a missing vocabulary: exit 1 and a message",
             r.stderr.decode())
        qwen = os.path.join(tmpdir, "qwen.gguf")
        gguf_strings(qwen, [("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "qwen2")])
        r = tokenize(qwen, b"hi", False, tmpdir)
        t.ok(r.returncode == 1 and b"qwen2" in r.stderr,
             "a vocabulary with an unknown pre-tokenizer: exit 1, the message names it",
             r.stderr.decode())
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
