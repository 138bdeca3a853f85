#!/usr/bin/env python3
"""test_ktxd_batch - continuous batching in ktxd.

With --batch-max 4, two users' questions run at once (both stream tokens
before either is done; status and ps show both running); each job of a
batch, joining it while another decodes, gives the same greedy answer as
when it runs alone; a long prompt is prefilled in chunks between the
others' decode steps; a job cancelled mid-batch stops alone; a job that
reaches the end of its context ends alone ("length") while the other goes
on, and one whose prompt does not fit fails alone. With --batch-max 1 jobs
run one after the other, with the same answers.
"""
import os
import subprocess
import sys
import threading
import time
import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktxtest  # noqa: E402
from ktxd_harness import Daemon  # noqa: E402

t = ktxtest.Tap()
ROOT = os.geteuid() == 0
PROMPTS = ["Tell me about the sea.", "Count from one to ten, please, slowly and clearly."]


class Ask(threading.Thread):
    """One interactive ask over its own connection; events kept with their arrival time."""

    def __init__(self, d, prompt, max_tokens, **opt):
        super().__init__(daemon=True)
        self.c = d.client(timeout=120)
        self.msg = dict({"op": "ask", "id": 1, "prompt": prompt, "max_tokens": max_tokens,
                         "temperature": 0}, **opt)
        self.events = []
        self.start()

    def run(self):
        self.c.send(self.msg)
        while True:
            ev = self.c.event()
            if ev is None:
                break
            self.events.append((time.time(), ev))
            if ev.get("ev") in ("done", "error"):
                break

    def finish(self):
        self.join(120)
        self.c.close()
        return self

    def first(self, kind):
        """Arrival time of the first event of a kind (None: never)."""
        return next((tm for tm, ev in self.events if ev.get("ev") == kind), None)

    def end(self):
        return self.events[-1][1] if self.events else {}

    def text(self):
        return "".join(ev.get("text", "") for _, ev in self.events if ev.get("ev") == "token")

    def wait_tokens(self, n, timeout=30):
        end = time.time() + timeout
        while time.time() < end and self.is_alive():
            if sum(1 for _, ev in self.events if ev.get("ev") == "token") >= n:
                return True
            time.sleep(0.005)
        return False


def alone(d, prompt, n):
    a = Ask(d, prompt, n).finish()
    return a.text(), a.end()


class AskCli(threading.Thread):
    """ktxctl --json ask, as uid (when root); lines kept with their arrival time."""

    def __init__(self, d, uid, prompt, n):
        super().__init__(daemon=True)
        cmd = [ktxtest.program("ktxctl"), "--socket", d.socket, "--json", "ask",
               "--temperature", "0", "-n", str(n), prompt]
        if ROOT:
            cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events = []
        self.start()

    def run(self):
        for line in self.proc.stdout:
            try:
                self.events.append((time.time(), json.loads(line)))
            except ValueError:
                pass
        self.proc.wait()

    def first(self, kind):
        return next((tm for tm, ev in self.events if ev.get("ev") == kind), None)


# Answers long enough that a job cannot end before another one's process has
# started, even on the fast path of this tiny model.
N_REF = 200


def running_jobs(c):
    evs = c.request({"op": "ps"})
    return evs[0].get("running"), [e["job"] for e in evs
                                   if e.get("ev") == "job" and e.get("state") == "running"]


d = Daemon(args=["--batch-max", "4"])
d1 = None
try:
    # Each job alone first: the reference answers.
    ref = [alone(d, p, N_REF) for p in PROMPTS]
    t.ok(all(e.get("ev") == "done" and txt for txt, e in ref),
         "two greedy answers alone (%d and %d tokens)" % tuple(e.get("gen_tokens", 0)
                                                             for _, e in ref))

    # Two users at once.
    users = [AskCli(d, 1000 + i, "user %d asks about rivers" % i, 400) for i in range(2)]
    admin = d.client()
    seen = (0, [])
    while any(u.is_alive() for u in users) and len(seen[1]) < 2:
        seen = running_jobs(admin)
        time.sleep(0.01)
    for u in users:
        u.join(120)
    dones = [u.first("done") for u in users]
    tokens = [u.first("token") for u in users]
    t.ok(all(dones) and all(u.first("started") for u in users) and
         max(u.first("started") for u in users) < min(dones),
         "two users' jobs both start before either is done%s" % ("" if ROOT else
                                                                 " (one uid: not root)"))
    t.ok(all(tokens) and max(tokens) < min(dones),
         "both stream tokens before either is done (the batch decodes them together)")
    t.ok(seen[0] == 2 and len(seen[1]) == 2,
         "status and ps show both running (%s, %s)" % seen)

    # A batch whose second job joins while the first decodes: same answers.
    a = Ask(d, PROMPTS[0], N_REF)
    a.wait_tokens(3)
    b = Ask(d, PROMPTS[1], N_REF)
    a.finish()
    b.finish()
    t.ok(b.first("token") is not None and a.end().get("ev") == "done" and
         b.first("token") < a.first("done"),
         "a job joins the running batch (its first token before the other is done)")
    t.ok((a.text(), b.text()) == (ref[0][0], ref[1][0]),
         "each job of the batch gives its greedy answer alone", [a.text(), b.text()])
    # Four at once, all joining together.
    four = [Ask(d, PROMPTS[i % 2], N_REF) for i in range(4)]
    texts = [x.finish().text() for x in four]
    t.ok(texts == [ref[i % 2][0] for i in range(4)],
         "four jobs at once give their answers alone", texts)

    # A long prompt joins: its prefill runs in chunks between the others' steps.
    a = Ask(d, "keep talking", 3000)
    a.wait_tokens(2)
    b = Ask(d, "y " * 700, 2)
    b.finish()
    admin.request({"op": "cancel", "job": a.events[0][1].get("job")})
    a.finish()
    during = [tm for tm, ev in a.events if ev.get("ev") == "token" and
              b.first("started") < tm < (b.first("token") or 0)]
    t.ok(b.end().get("ev") == "done" and b.end().get("prompt_tokens", 0) > 512 and
         len(during) >= 2,
         "a %s-token prompt does not stall the batch: %d tokens of the other job came "
         "during its prefill" % (b.end().get("prompt_tokens"), len(during)), b.end())

    # Cancel one job of a batch: the other goes on to its end.
    a = Ask(d, "a long answer to cancel", 3000)
    b = Ask(d, PROMPTS[1], 40)
    a.wait_tokens(2)
    b.wait_tokens(2)
    admin.request({"op": "cancel", "job": a.events[0][1].get("job")})
    a.finish()
    b.finish()
    t.ok(a.end().get("ev") == "error" and a.end().get("code") == "canceled",
         "a job cancelled mid-batch ends canceled", a.end())
    t.ok(b.end().get("ev") == "done" and b.first("done") > a.first("error"),
         "and the other finishes after it (%s tokens)" % b.end().get("gen_tokens"), b.end())
    t.ok(b.text().startswith(ref[1][0]) or ref[1][0].startswith(b.text()),
         "with its own answer")
    admin.close()
    t.ok(d.stop() == 0, "clean exit")
finally:
    d.cleanup()

# A small context: one job reaches its end, another's prompt does not fit.
d = Daemon(args=["--batch-max", "4", "--context", "80"])
try:
    long_prompt = " ".join("word%d" % i for i in range(20))
    a = Ask(d, long_prompt, 1000)
    a.wait_tokens(1)
    b = Ask(d, PROMPTS[0], 1000)
    c = Ask(d, "x " * 400, 10)
    for x in (a, b, c):
        x.finish()
    ea, eb, ec = a.end(), b.end(), c.end()
    t.ok(ea.get("ev") == "done" and ea.get("reason") == "length" and
         ea.get("prompt_tokens", 0) + ea.get("gen_tokens", 0) >= 79,
         "a job that fills its context ends alone with reason length (%s + %s tokens)" %
         (ea.get("prompt_tokens"), ea.get("gen_tokens")), ea)
    t.ok(ec.get("ev") == "error" and ec.get("code") == "context_full",
         "a prompt over the context fails alone (context_full)", ec)
    t.ok(eb.get("ev") == "done" and eb.get("gen_tokens", 0) > ea.get("gen_tokens", 0) and
         b.first("done") > a.first("done"),
         "the other job goes on after both (%s tokens)" % eb.get("gen_tokens"), eb)
    t.ok(d.stop() == 0, "clean exit")
finally:
    d.cleanup()

# batch_max 1: one job at a time, the same answers.
d1 = Daemon(args=["--batch-max", "1"])
try:
    a = Ask(d1, PROMPTS[0], N_REF)
    a.wait_tokens(1)
    b = Ask(d1, PROMPTS[1], N_REF)
    a.finish()
    b.finish()
    t.ok(a.first("done") is not None and b.first("token") is not None and
         b.first("token") > a.first("done"),
         "--batch-max 1: the second job waits until the first is done")
    t.ok((a.text(), b.text()) == (ref[0][0], ref[1][0]),
         "with the same greedy answers")
    t.ok(d1.stop() == 0, "clean exit")
finally:
    d1.cleanup()
sys.exit(t.done())
