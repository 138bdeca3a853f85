"""ggufpy - a small GGUF reader and writer for the demo-model tools.

Only what train-demo needs: metadata of every value type, the tensor table,
and F32 / F16 / Q8_0 tensor data. The format is the published GGUF v3
(https://github.com/ggml-org/ggml/blob/master/docs/gguf.md). The shipped
model itself is written by ktx's C writer (export.c); this module writes only
the vocabulary-only GGUF and reads files back for checking.
"""
import struct

# Metadata value types, numbered as in the format.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i",
           FLOAT32: "f", BOOL: "?", UINT64: "Q", INT64: "q", FLOAT64: "d"}

# Tensor types used here (ggml ids), with (elements per block, bytes per block).
T_F32, T_F16, T_Q8_0 = 0, 1, 8
_BLOCK = {T_F32: (1, 4), T_F16: (1, 2), T_Q8_0: (32, 34)}


class Reader:
    """Parses a whole GGUF file held in memory; kv maps key -> (type, value)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        self.off = 0
        if self.buf[:4] != b"GGUF":
            raise ValueError("%s: not a GGUF file" % path)
        self.off = 4
        self.version = self._u("I")
        n_tensors = self._u("Q")
        n_kv = self._u("Q")
        self.kv = {}
        for _ in range(n_kv):
            key = self._str()
            vt = self._u("I")
            self.kv[key] = (vt, self._val(vt))
        self.tensors = {}
        order = []
        for _ in range(n_tensors):
            name = self._str()
            n_dims = self._u("I")
            ne = [self._u("Q") for _ in range(n_dims)]
            ttype = self._u("I")
            offset = self._u("Q")
            self.tensors[name] = {"ne": ne, "type": ttype, "offset": offset}
            order.append(name)
        self.order = order
        align = self.kv.get("general.alignment", (UINT32, 32))[1]
        self.data_off = (self.off + align - 1) // align * align

    def _u(self, fmt):
        v = struct.unpack_from("<" + fmt, self.buf, self.off)[0]
        self.off += struct.calcsize("<" + fmt)
        return v

    def _str(self):
        n = self._u("Q")
        s = self.buf[self.off:self.off + n].decode("utf-8")
        self.off += n
        return s

    def _val(self, vt):
        if vt == STRING:
            return self._str()
        if vt == ARRAY:
            et = self._u("I")
            n = self._u("Q")
            return (et, [self._val(et) for _ in range(n)])
        return self._u(_SCALAR[vt])

    def value(self, key):
        """The value of key; arrays come back as plain lists."""
        vt, v = self.kv[key]
        return v[1] if vt == ARRAY else v

    def tensor_bytes(self, name):
        """The raw data of a tensor."""
        t = self.tensors[name]
        n = 1
        for d in t["ne"]:
            n *= d
        epb, bpb = _BLOCK[t["type"]]
        start = self.data_off + t["offset"]
        return self.buf[start:start + n // epb * bpb]


class Writer:
    """Collects metadata (no tensors) and writes a GGUF v3 file."""

    def __init__(self):
        self.items = []

    def add(self, key, vt, value, elem_type=None):
        self.items.append((key, vt, value, elem_type))

    @staticmethod
    def _pack_str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _pack_val(self, vt, v, et):
        if vt == STRING:
            return self._pack_str(v)
        if vt == ARRAY:
            out = [struct.pack("<IQ", et, len(v))]
            out += [self._pack_val(et, x, None) for x in v]
            return b"".join(out)
        return struct.pack("<" + _SCALAR[vt], v)

    def write(self, path):
        out = [b"GGUF", struct.pack("<IQQ", 3, 0, len(self.items))]
        for key, vt, v, et in self.items:
            out.append(self._pack_str(key) + struct.pack("<I", vt) + self._pack_val(vt, v, et))
        with open(path, "wb") as f:
            f.write(b"".join(out))


def dequant_q8_0(raw, n):
    """Q8_0 blocks (fp16 scale d, then 32 int8 q) to a list-like float32 array: x = d * q."""
    import numpy as np
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n // 32, 34)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(n)
