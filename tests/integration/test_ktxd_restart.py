#!/usr/bin/env python3
"""test_ktxd_restart - crash safety and clean stops.

kill -9 while a detached job runs, another waits and an interactive one
waits: after a restart the history is intact, the detached jobs run to the
end, the interactive one is marked interrupted. SIGTERM while a detached
job runs exits 0 and the job is re-queued by the next start. The first
daemon runs one job at a time (--batch-max 1) so that the others still wait
when it is killed.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktxtest  # noqa: E402
from ktxd_harness import Daemon  # noqa: E402

t = ktxtest.Tap()


def job_state(c, job):
    evs = c.request({"op": "jobs", "all": True, "limit": 100})
    return [e["state"] for e in evs if e.get("ev") == "job" and e.get("job") == job]


def running(c, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if c.request({"op": "status"})[0].get("running") == 1:
            return True
        time.sleep(0.02)
    return False


d = Daemon(args=["--batch-max", "1"])
d2 = d3 = None
try:
    c = d.client()
    first = c.request({"op": "ask", "prompt": "remember this", "max_tokens": 4})
    conv = first[-1].get("conversation")
    t.ok(first[-1].get("ev") == "done", "a finished exchange before the crash", first[-1])
    # Greedy, and limited only by the context: sampled, it may end its turn
    # before the kill on a slow machine.
    a = c.request({"op": "submit", "prompt": "a long detached job", "max_tokens": 100000,
                   "temperature": 0})
    b = c.request({"op": "submit", "prompt": "a waiting detached job", "max_tokens": 3})
    ja, jb = a[-1]["job"], b[-1]["job"]
    other = d.client()
    other.send({"op": "ask", "id": 4, "prompt": "an interactive one", "max_tokens": 3})
    queued = other.event()
    t.ok(running(c), "the detached job is running")
    time.sleep(0.3)
    d.stop(signal.SIGKILL)
    t.ok(d.proc.returncode == -signal.SIGKILL, "ktxd killed with SIGKILL mid-job")

    d2 = d.restart()
    c = d2.client()
    shown = c.request({"op": "show", "conversation": str(conv)})
    turns = [e for e in shown if e.get("ev") == "turn"]
    t.ok(len(turns) == 2 and turns[0]["text"] == "remember this",
         "the history is intact after the restart", shown)
    t.ok(job_state(c, queued.get("job")) == ["interrupted"],
         "the interactive job is marked interrupted")
    t.ok(job_state(c, ja) in (["running"], ["queued"]),
         "the detached job that was running is queued again", job_state(c, ja))
    c.request({"op": "cancel", "job": ja})
    res = c.request({"op": "wait", "job": jb}, until=("result", "error"))
    t.ok(res[-1].get("state") == "done" and res[-1].get("gen_tokens") == 3,
         "the waiting detached job runs to the end after the restart", res)

    # SIGTERM with a detached job running: clean exit, the job comes back.
    r = c.request({"op": "submit", "prompt": "stopped by SIGTERM", "max_tokens": 100000,
                   "temperature": 0})
    jc = r[-1]["job"]
    t.ok(running(c), "another detached job runs")
    c.close()
    rc = d2.stop(signal.SIGTERM, timeout=10)
    t.ok(rc == 0, "SIGTERM: exit 0 while a job ran", d2.log_text()[-2000:])
    d3 = d2.restart()
    c = d3.client()
    t.ok(job_state(c, jc) in (["running"], ["queued"]),
         "its job is queued again after the restart", job_state(c, jc))
    c.request({"op": "cancel", "job": jc})
    c.close()
    t.ok(d3.stop() == 0, "clean exit")
    log = d3.log_text()
    t.ok("re-queued" in log, "the restart logs what it recovered")
finally:
    for x in (d3, d2, d):
        if x is not None:
            x.stop(signal.SIGKILL)
    d.cleanup()
sys.exit(t.done())
