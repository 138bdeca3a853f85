"""fake_ktxd - a scripted stand-in for ktxd, to test ktxctl without the daemon.

It listens on a Unix socket, answers hello with a welcome, records every
request, and answers each with what the test's handler returns: event
dicts (the request id is filled in), raw bytes, callables (run, e.g. to
wait for the test), or "close" to hang up. Python stdlib only.
"""
import os
import socket
import threading

import ktxwire


class FakeKtxd:
    def __init__(self, path, handler=None, welcome=None, hello_reply=None):
        self.path = path
        self.handler = handler or (lambda req: [{"ev": "ok"}])
        self.welcome = welcome or {"ev": "welcome", "version": 1, "server": "fake-ktxd",
                                   "frame_max": 8 << 20, "prompt_max": 4 << 20,
                                   "model": "fake"}
        self.hello_reply = hello_reply
        self.requests = []
        self.hellos = []
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, s):
        try:
            hello = ktxwire.read_frame(s)
            if hello is None:
                return
            self.hellos.append(hello)
            reply = dict(self.hello_reply or self.welcome, id=hello.get("id", 0))
            s.sendall(ktxwire.frame(reply))
            while True:
                req = ktxwire.read_frame(s)
                if req is None:
                    return
                self.requests.append(req)
                for action in self.handler(req):
                    if action == "close":
                        return
                    if isinstance(action, bytes):
                        s.sendall(action)
                    elif callable(action):
                        action()
                    else:
                        s.sendall(ktxwire.frame(dict(action, id=req["id"])))
        except OSError:
            pass
        finally:
            s.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(timeout=2)
        if os.path.exists(self.path):
            os.unlink(self.path)
