#!/usr/bin/env python3
"""ktxctl against a scripted fake ktxd: streaming, stdin prompts, options,
--json, chat, list commands, every exit status and error message, and the
man page's agreement with --help. The real daemon is tested in
tests/integration."""
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ktxtest import SRCDIR, Tap, program  # noqa: E402
from fake_ktxd import FakeKtxd  # noqa: E402

KTXCTL = program("ktxctl")
TEXT = "first line\n\tsecond line \u4e2d\u6587 \U0001F600 \"quoted\" \\\n"

t = Tap()
tmp = tempfile.mkdtemp(prefix="ktxctl-test-")
SOCK = os.path.join(tmp, "ktxd.sock")


def ktxctl(args, stdin=b"", env=None, sock=SOCK):
    full = [KTXCTL] + (["--socket", sock] if sock else []) + args
    e = dict(os.environ)
    e.pop("KTX_SOCKET", None)
    e.update(env or {})
    p = subprocess.run(full, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def stream(req, pieces=("Hel", "lo, ", "\u4e16\u754c"), conv=12):
    """Events of a normal ask."""
    evs = [{"ev": "queued", "job": 5, "position": 2}, {"ev": "started", "job": 5}]
    evs += [{"ev": "token", "text": p} for p in pieces]
    evs.append({"ev": "done", "job": 5, "conversation": conv, "prompt_tokens": 9,
                "gen_tokens": len(pieces), "prefill_tps": 50.0, "decode_tps": 5.5,
                "reason": "eos"})
    return evs


# ---- connecting --------------------------------------------------------
rc, out, err = ktxctl(["ask", "hi"], sock=os.path.join(tmp, "nothing.sock"))
t.ok(rc == 3, "no socket: exit 3", err)
t.ok("ktxd is not running: no socket at " + os.path.join(tmp, "nothing.sock") in err,
     "no socket: stderr names the cause and the path", err)

dead = os.path.join(tmp, "dead.sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(dead)
s.close()
rc, out, err = ktxctl(["status"], sock=dead)
t.ok(rc == 3 and "nothing listens on " + dead in err, "a socket nobody listens on: exit 3",
     err)

fake = FakeKtxd(SOCK)

rc, out, err = ktxctl(["ping"], sock=None, env={"KTX_SOCKET": SOCK})
t.ok(rc == 0 and fake.requests[-1]["op"] == "ping", "KTX_SOCKET selects the daemon", err)
t.ok(fake.hellos[-1]["op"] == "hello" and fake.hellos[-1]["version"] == 1 and
     fake.hellos[-1]["client"].startswith("ktxctl"), "hello carries version 1 and the client")

# ---- ask -----------------------------------------------------------------
fake.handler = stream
rc, out, err = ktxctl(["ask", "why", "is", "the", "sky", "blue?"])
t.ok(rc == 0 and out == "Hello, \u4e16\u754c\n", "ask prints the streamed answer", out + err)
t.ok(fake.requests[-1]["prompt"] == "why is the sky blue?", "ask joins its arguments")
t.ok("conversation" not in fake.requests[-1] and "detached" not in fake.requests[-1],
     "a plain ask starts a new conversation")

rc, out, err = ktxctl(["ask"], stdin=TEXT.encode())
t.ok(rc == 0 and fake.requests[-1]["prompt"] == TEXT,
     "ask with no prompt reads stdin byte for byte (newlines, tabs, CJK, emoji)")
rc, out, err = ktxctl(["ask", "-"], stdin=TEXT.encode())
t.ok(rc == 0 and fake.requests[-1]["prompt"] == TEXT, "ask - reads stdin")
big = ("x" * 1023 + "\n") * 1024
rc, out, err = ktxctl(["ask"], stdin=big.encode())
t.ok(rc == 0 and fake.requests[-1]["prompt"] == big, "a 1 MiB prompt goes through whole")

rc, out, err = ktxctl(["ask", "-n", "5", "--temperature", "0.5", "--top-p", "0.9",
                       "--seed", "7", "-c", "--detach", "q"])
r = fake.requests[-1]
t.ok(rc == 0 and r.get("max_tokens") == 5 and r.get("temperature") == 0.5 and
     r.get("top_p") == 0.9 and r.get("seed") == 7 and r.get("conversation") == "last" and
     r.get("detached") is True, "sampling options, -c and --detach reach the request", r)
rc, out, err = ktxctl(["ask", "--conversation", "notes", "q"])
t.ok(fake.requests[-1].get("conversation") == "notes", "--conversation NAME is sent")

rc, out, err = ktxctl(["-v", "ask", "q"])
t.ok(rc == 0 and "position 2" in err and "5.5 tok/s" in err and out.startswith("Hello"),
     "--verbose puts position and statistics on stderr, not stdout", err)

rc, out, err = ktxctl(["--json", "ask", "q"])
lines = [json.loads(l) for l in out.splitlines()]
t.ok(rc == 0 and [l["ev"] for l in lines] == ["queued", "started", "token", "token", "token",
                                              "done"], "--json: one object per event", out)
t.ok(lines[-1].get("decode_tps") == 5.5 and lines[-1].get("conversation") == 12 and
     lines[2]["text"] == "Hel", "--json: fields and values intact", out)

WEIRD = "ctl\x01\x1f\x7f \"q\" \\ \n\t\r \u4e2d \U0001F600"
fake.handler = lambda req: [{"ev": "token", "text": WEIRD, "future_field": [1, {"x": None}]},
                            {"ev": "done", "job": 1, "speed_of_light": 3e8}]
rc, out, err = ktxctl(["--json", "ask", "q"])
lines = [json.loads(l) for l in out.splitlines()]
t.ok(rc == 0 and lines[0]["text"] == WEIRD and "future_field" not in lines[0],
     "--json escapes control characters; unknown event fields are ignored", out + err)
rc, out, err = ktxctl(["ask", "q"])
t.ok(rc == 0 and out == WEIRD + "\n", "text mode prints the text as it is", repr(out))

# Streaming: the first piece must reach stdout while ktxd still holds the rest.
gate = threading.Event()


def slow(req):
    return [{"ev": "started", "job": 1}, {"ev": "token", "text": "early "},
            lambda: gate.wait(10), {"ev": "token", "text": "late"},
            {"ev": "done", "job": 1}]


fake.handler = slow
p = subprocess.Popen([KTXCTL, "--socket", SOCK, "ask", "q"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
seen = b""
deadline = time.time() + 10
while b"early" not in seen and time.time() < deadline:
    if select.select([p.stdout], [], [], 0.5)[0]:
        chunk = os.read(p.stdout.fileno(), 100)
        if not chunk:
            break
        seen += chunk
t.ok(b"early" in seen and not gate.is_set(), "tokens are streamed, not buffered to the end")
gate.set()
rest, _ = p.communicate(timeout=20)
t.ok(p.returncode == 0 and (seen + rest) == b"early late\n", "... and the rest follows")

# ---- prompts refused before sending ------------------------------------
n = len(fake.requests)
rc, out, err = ktxctl(["ask"], stdin=b"")
t.ok(rc == 2 and "empty" in err and len(fake.requests) == n, "an empty prompt: exit 2", err)
rc, out, err = ktxctl(["ask"], stdin=b"caf\xe9\n")
t.ok(rc == 2 and "UTF-8" in err and len(fake.requests) == n, "a Latin-1 prompt: exit 2", err)
fake.welcome = dict(fake.welcome, prompt_max=100)
rc, out, err = ktxctl(["ask"], stdin=b"y" * 101)
t.ok(rc == 8 and "limit of 100 bytes" in err and len(fake.requests) == n,
     "a prompt over the announced limit: exit 8, nothing sent", err)
rc, out, err = ktxctl(["ask"], stdin=b"y" * 100)
t.ok(rc == 0, "a prompt at the limit is sent", err)
fake.welcome = dict(fake.welcome, prompt_max=4 << 20, frame_max=1000)
n = len(fake.requests)
rc, out, err = ktxctl(["ask"], stdin=b"y" * 1000)
t.ok(rc == 8 and "over the frame limit of 1000 bytes" in err and len(fake.requests) == n,
     "a request over the announced frame limit: exit 8, nothing sent", err)
fake.welcome = dict(fake.welcome, prompt_max=4 << 20, frame_max=8 << 20)

# ---- errors from ktxd -> exit statuses -----------------------------------
for code, status in [("busy", 4), ("canceled", 5), ("not_found", 6), ("forbidden", 7),
                     ("too_large", 8), ("context_full", 8), ("pending", 10),
                     ("internal", 1), ("unknown_op", 1), ("bad_field", 1),
                     ("unavailable", 1)]:
    fake.handler = lambda req, c=code: [{"ev": "error", "code": c,
                                         "message": "because of " + c}]
    rc, out, err = ktxctl(["ask", "q"])
    t.ok(rc == status and ("because of %s (%s)" % (code, code)) in err,
         "error %s: exit %d with the daemon's message" % (code, status), err)

fake.handler = lambda req: [{"ev": "token", "text": "partial"},
                            {"ev": "error", "code": "canceled", "message": "job 5 was canceled"}]
rc, out, err = ktxctl(["ask", "q"])
t.ok(rc == 5 and out == "partial\n" and "canceled" in err,
     "canceled mid-stream: partial answer, newline, exit 5", out + err)

fake.handler = lambda req: [{"ev": "token", "text": "half"}, "close"]
rc, out, err = ktxctl(["ask", "q"])
t.ok(rc == 9 and "closed the connection" in err, "ktxd hangs up mid-stream: exit 9", err)

fake.handler = lambda req: [b"\x00\x00\x00\x05\xdd\xff\xff\xff\xff"]
rc, out, err = ktxctl(["ask", "q"])
t.ok(rc == 9 and "bad event from ktxd" in err, "a hostile frame from ktxd: exit 9", err)

fake.handler = lambda req: [b"\xff\xff\xff\xff"]
rc, out, err = ktxctl(["status"])
t.ok(rc == 9 and "over the limit" in err, "a 4 GiB frame prefix from ktxd: exit 9", err)

fake.hello_reply = {"ev": "error", "code": "version", "message": "protocol 1 is not spoken here"}
rc, out, err = ktxctl(["status"])
t.ok(rc == 9 and "protocol 1 is not spoken here" in err, "a refused hello: exit 9", err)
fake.hello_reply = None

# ---- the other commands -------------------------------------------------
fake.handler = lambda req: [{"ev": "accepted", "job": 42, "position": 3}]
rc, out, err = ktxctl(["submit", "nightly", "report"])
t.ok(rc == 0 and out == "42\n" and fake.requests[-1]["op"] == "submit" and
     fake.requests[-1]["prompt"] == "nightly report", "submit prints the job id", out + err)

jobs = [{"ev": "job", "job": 1, "state": "running", "position": 0, "user": "alice", "age": 75,
         "title": "long\nprompt"},
        {"ev": "job", "job": 2, "state": "queued", "position": 1, "uid": 1001, "age": 4,
         "title": "\u4e2d\u6587"},
        {"ev": "end", "count": 2}]
fake.handler = lambda req: jobs
rc, out, err = ktxctl(["jobs", "--all", "--limit", "5"])
r = fake.requests[-1]
t.ok(rc == 0 and r["op"] == "jobs" and r.get("all") is True and r.get("limit") == 5,
     "jobs --all --limit N sends all and limit", r)
rows = out.splitlines()
t.ok(len(rows) == 3 and rows[0].split()[:2] == ["JOB", "STATE"] and
     rows[1].split()[:4] == ["1", "running", "0", "alice"] and "1m15s" in rows[1] and
     "long..." in rows[1] and rows[2].split()[3] == "1001", "jobs prints a table", out)

fake.handler = lambda req: [{"ev": "status", "server": "fake", "model": "tiny-v3",
                             "state": "ready", "uptime": 3700, "ram": 3 << 30,
                             "vram": 1 << 30, "waiting": 1, "running": 1, "tok_s": 7.25}] + jobs
rc, out, err = ktxctl(["queue"])
t.ok(rc == 0 and fake.requests[-1]["op"] == "ps" and "tiny-v3" in out and
     "3.0 GiB RAM, 1.0 GiB VRAM" in out and "JOB" in out and "alice" in out,
     "queue (ps) shows the model, memory and jobs", out)

fake.handler = lambda req: [{"ev": "conversation", "conversation": 12, "name": "notes",
                             "turns": 4, "updated": 1700000000},
                            {"ev": "conversation", "conversation": 13, "title": "hi there",
                             "turns": 2}, {"ev": "end", "count": 2}]
rc, out, err = ktxctl(["history"])
t.ok(rc == 0 and "notes" in out and "hi there" in out and out.splitlines()[1].startswith("12"),
     "history lists conversations", out)

fake.handler = lambda req: [{"ev": "conversation", "conversation": 12, "turns": 2},
                            {"ev": "turn", "role": "user", "text": TEXT},
                            {"ev": "turn", "role": "assistant", "text": "answer"},
                            {"ev": "end", "count": 2}]
rc, out, err = ktxctl(["show", "12"])
t.ok(rc == 0 and fake.requests[-1]["conversation"] == "12" and
     out.startswith("conversation 12\n\n[user]\n" + TEXT) and
     "[assistant]\nanswer\n" in out, "show prints the turns with their text intact", out)

fake.handler = lambda req: [{"ev": "ok", "conversation": 12}]
rc, out, err = ktxctl(["rm", "notes"])
t.ok(rc == 0 and out == "" and fake.requests[-1] == {"op": "rm", "id": fake.requests[-1]["id"],
                                                    "conversation": "notes"}, "rm", err)
rc, out, err = ktxctl(["cancel", "17"])
t.ok(rc == 0 and fake.requests[-1].get("job") == 17, "cancel JOB", err)
rc, out, err = ktxctl(["cancel", "x17"])
t.ok(rc == 2 and "bad job id" in err, "cancel with a bad id: exit 2", err)

fake.handler = lambda req: [{"ev": "result", "job": 17, "state": "done", "text": "the answer"}]
rc, out, err = ktxctl(["wait", "17"])
t.ok(rc == 0 and out == "the answer\n" and fake.requests[-1]["op"] == "wait",
     "wait prints the result", out + err)
long_answer = ("\u4e16\u754c " * 40000) + "end\n"
fake.handler = lambda req: [{"ev": "result", "job": 17, "state": "done", "text": long_answer}]
rc, out, err = ktxctl(["result", "17"])
t.ok(rc == 0 and out == long_answer, "a 280 KB result arrives whole", err)
fake.handler = lambda req: [{"ev": "result", "job": 17, "state": "failed", "code": "context_full",
                             "message": "the conversation no longer fits"}]
rc, out, err = ktxctl(["result", "17"])
t.ok(rc == 8 and "no longer fits" in err, "result of a failed job: its code's exit status", err)
fake.handler = lambda req: [{"ev": "result", "job": 17, "state": "canceled"}]
rc, out, err = ktxctl(["result", "17"])
t.ok(rc == 5, "result of a canceled job: exit 5", err)
fake.handler = lambda req: [{"ev": "result", "job": 17, "state": "interrupted",
                             "code": "unavailable", "message": "ktxd stopped during the job"}]
rc, out, err = ktxctl(["result", "17"])
t.ok(rc == 1 and "ktxd stopped" in err, "result of an interrupted job: exit 1", err)
fake.handler = lambda req: [{"ev": "error", "code": "pending", "message": "job 17 is queued"}]
rc, out, err = ktxctl(["result", "17"])
t.ok(rc == 10 and "job 17 is queued" in err, "result of an unfinished job: exit 10", err)

# ---- chat ------------------------------------------------------------------
fake.handler = lambda req: stream(req, pieces=("reply",), conv=77)
n = len(fake.requests)
rc, out, err = ktxctl(["chat"], stdin="\nhello\nworld \U0001F600\n\nsecond\n.\nthird".encode())
asks = fake.requests[n:]
t.ok(rc == 0 and len(asks) == 3, "chat: three messages, EOF quits", err)
t.ok(asks[0]["prompt"] == "hello\nworld \U0001F600" and "conversation" not in asks[0],
     "chat: a message spans lines up to an empty line", asks[:1])
t.ok(asks[1]["prompt"] == "second" and asks[1].get("conversation") == "77" and
     asks[2]["prompt"] == "third" and asks[2].get("conversation") == "77",
     "chat: \".\" ends a message; later messages continue the conversation", asks[1:])
t.ok(out == "reply\n\n" * 3, "chat prints each answer", out)

# ---- usage -------------------------------------------------------------------
for args, what in [(["frobnicate"], "an unknown command"), (["show"], "show without REF"),
                   (["status", "x"], "status with an argument"),
                   (["history", "-n", "3"], "an option that does not apply"),
                   (["ask", "--top-p", "2", "q"], "--top-p out of range"),
                   (["ask", "-n", "0", "q"], "-n 0"), ([], "no command")]:
    rc, out, err = ktxctl(args)
    t.ok(rc == 2, "usage: %s: exit 2" % what, err)

rc, out, err = ktxctl(["--help"])
t.ok(rc == 0 and "Exit status" in out, "--help prints usage and exit statuses")
help_text = out
rc, out, err = ktxctl(["--version"])
t.ok(rc == 0 and out.startswith("ktxctl "), "--version")

# The man page documents every command, option and exit status of --help.
with open(os.path.join(SRCDIR, "man", "ktxctl.1"), encoding="utf-8") as f:
    man = f.read()
synopsis = man.split(".Sh SYNOPSIS")[1].split(".Sh DESCRIPTION")[0]
cmds = sorted(set(re.findall(r"^\s+ktxctl .*?(?:\] )+(\w+)", help_text, re.M)) |
              {"result", "wait", "cancel", "status", "ps", "queue", "ping"})
missing = [c for c in cmds if not re.search(r"\b%s\b" % c, synopsis)]
t.ok(not missing, "ktxctl(1) SYNOPSIS names every command of --help", missing)
longs = sorted(set(re.findall(r"--([a-z-]+)", help_text)))
missing = [o for o in longs if ("Fl -" + o) not in man]
t.ok(not missing, "ktxctl(1) documents every long option of --help", missing)
statuses = re.findall(r"(\d+) ", help_text.split("Exit status:")[1])
missing = [s for s in statuses if (".It %s" % s) not in man]
t.ok(not missing, "ktxctl(1) documents every exit status", missing)

fake.stop()
sys.exit(t.done())
