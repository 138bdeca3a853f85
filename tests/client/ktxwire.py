"""ktxwire - the ktx wire protocol in plain Python (stdlib only), for tests.

A minimal msgpack encoder/decoder covering what the protocol uses (maps,
strings, unsigned and negative integers, floats, booleans, nil) and the
4-byte big-endian length framing. See ktx-protocol(7).
"""
import struct


def pack(obj):
    """msgpack bytes of obj (dict, str, bytes, int, float, bool, None, list)."""
    if obj is None:
        return b"\xc0"
    if obj is True:
        return b"\xc3"
    if obj is False:
        return b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 0x80:
            return bytes([obj])
        if 0 <= obj <= 0xFFFFFFFFFFFFFFFF:
            return b"\xcf" + struct.pack(">Q", obj)
        if -32 <= obj < 0:
            return struct.pack(">b", obj)
        return b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, float):
        return b"\xcb" + struct.pack(">d", obj)
    if isinstance(obj, str):
        obj = obj.encode("utf-8")
        return _strhead(len(obj)) + obj
    if isinstance(obj, bytes):
        # raw bytes as a msgpack *string* (lets tests send invalid UTF-8)
        return _strhead(len(obj)) + obj
    if isinstance(obj, (list, tuple)):
        n = len(obj)
        head = bytes([0x90 | n]) if n < 16 else b"\xdd" + struct.pack(">I", n)
        return head + b"".join(pack(x) for x in obj)
    if isinstance(obj, dict):
        n = len(obj)
        head = bytes([0x80 | n]) if n < 16 else b"\xdf" + struct.pack(">I", n)
        return head + b"".join(pack(k) + pack(v) for k, v in obj.items())
    raise TypeError("cannot pack %r" % type(obj))


def _strhead(n):
    if n < 32:
        return bytes([0xA0 | n])
    if n < 0x100:
        return b"\xd9" + bytes([n])
    if n < 0x10000:
        return b"\xda" + struct.pack(">H", n)
    return b"\xdb" + struct.pack(">I", n)


def frame(obj):
    """A whole frame: length prefix + msgpack of obj."""
    body = pack(obj)
    return struct.pack(">I", len(body)) + body


def unpack(buf, pos=0):
    """(object, next position) of the msgpack object at buf[pos]."""
    c = buf[pos]
    pos += 1
    if c < 0x80:
        return c, pos
    if c >= 0xE0:
        return c - 0x100, pos
    if 0x80 <= c <= 0x8F:
        return _map(buf, pos, c & 0x0F)
    if 0x90 <= c <= 0x9F:
        return _arr(buf, pos, c & 0x0F)
    if 0xA0 <= c <= 0xBF:
        n = c & 0x1F
        return buf[pos:pos + n].decode("utf-8"), pos + n
    if c == 0xC0:
        return None, pos
    if c in (0xC2, 0xC3):
        return c == 0xC3, pos
    fixed = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
             0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if c in fixed:
        size = struct.calcsize(fixed[c])
        return struct.unpack(fixed[c], buf[pos:pos + size])[0], pos + size
    lens = {0xD9: ">B", 0xDA: ">H", 0xDB: ">I", 0xC4: ">B", 0xC5: ">H", 0xC6: ">I"}
    if c in lens:
        size = struct.calcsize(lens[c])
        n = struct.unpack(lens[c], buf[pos:pos + size])[0]
        pos += size
        raw = buf[pos:pos + n]
        return (raw.decode("utf-8") if c >= 0xD9 else raw), pos + n
    if c in (0xDC, 0xDD):
        size = 2 if c == 0xDC else 4
        n = struct.unpack(">H" if size == 2 else ">I", buf[pos:pos + size])[0]
        return _arr(buf, pos + size, n)
    if c in (0xDE, 0xDF):
        size = 2 if c == 0xDE else 4
        n = struct.unpack(">H" if size == 2 else ">I", buf[pos:pos + size])[0]
        return _map(buf, pos + size, n)
    raise ValueError("unsupported msgpack byte 0x%02x" % c)


def _map(buf, pos, n):
    d = {}
    for _ in range(n):
        k, pos = unpack(buf, pos)
        v, pos = unpack(buf, pos)
        d[k] = v
    return d, pos


def _arr(buf, pos, n):
    a = []
    for _ in range(n):
        v, pos = unpack(buf, pos)
        a.append(v)
    return a, pos


def read_frame(sock):
    """The next frame's object from a socket; None at end of stream."""
    head = _read_exact(sock, 4)
    if head is None:
        return None
    n = struct.unpack(">I", head)[0]
    body = _read_exact(sock, n)
    if body is None:
        return None
    obj, _ = unpack(body)
    return obj


def _read_exact(sock, n):
    out = b""
    while len(out) < n:
        part = sock.recv(n - len(out))
        if not part:
            return None
        out += part
    return out
