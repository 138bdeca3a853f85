"""test_dequant - every tensor of every oracle model, dequantized by
`ktx-run -m MODEL --dequant TENSOR OUT.f32`, must hash to the oracle's
dequant_sha256 (ggml's C dequantizers, float32 little-endian, file order).

One TAP line per model and element type; a mismatch is reported with the
tensor's name, type and shape, and whether the output had the right length.
"""
import concurrent.futures
import hashlib
import json
import os
import sys
import tempfile

from ktxtest import ORACLE, Tap, program, run


def length_hint(path, want_len):
    """For a wrong hash: whether the output had the length the shape implies."""
    size = os.path.getsize(path)
    if size != want_len:
        return "output is %d bytes, want %d" % (size, want_len)
    return "length right, contents differ"


def check_tensor(model, tensor, info, out):
    """Dequantizes one tensor with ktx-run; returns None or what went wrong."""
    r = run([program("ktx-run"), "-m", model, "--dequant", tensor, out])
    if r.returncode != 0 or not os.path.exists(out):
        return "%s: ktx-run exit %d: %s" % (
            tensor, r.returncode, r.stderr.decode(errors="replace").strip())
    with open(out, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got == info["dequant_sha256"]:
        return None
    n = 1
    for d in info["shape"]:
        n *= d
    return "%s (%s, shape %s): sha256 %s, want %s; %s" % (
        tensor, info["type"], info["shape"], got[:16], info["dequant_sha256"][:16],
        length_hint(out, 4 * n))


def check_model(tap, name, tmp, pool):
    model = os.path.join(ORACLE, "models", name + ".gguf")
    with open(os.path.join(ORACLE, "dequant", name + ".json")) as f:
        tensors = json.load(f)
    # one process per tensor, as many at once as there are CPUs
    results = dict(zip(tensors, pool.map(
        lambda item: check_tensor(model, item[1][0], item[1][1],
                                  os.path.join(tmp, "%d.f32" % item[0])),
        enumerate(tensors.items()))))
    groups = {}
    for tensor, info in tensors.items():
        groups.setdefault(info["type"], []).append(tensor)
    total = 0
    for qtype in sorted(groups):
        bad = [results[t] for t in groups[qtype] if results[t] is not None]
        total += len(groups[qtype]) - len(bad)
        tap.ok(not bad, "%s: %d %s tensors dequantize bit-exactly" % (
            name, len(groups[qtype]), qtype), "\n".join(bad))
    return total, len(tensors)


def main():
    tap = Tap()
    if not tap.ok(os.path.exists(program("ktx-run")), "ktx-run is built"):
        return tap.done()
    names = sorted(f[:-5] for f in os.listdir(os.path.join(ORACLE, "dequant"))
                   if f.endswith(".json"))
    tap.ok(len(names) > 0, "the oracle has dequant hashes")
    good = count = 0
    with tempfile.TemporaryDirectory() as tmp, \
            concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        for name in names:
            g, c = check_model(tap, name, tmp, pool)
            good += g
            count += c
    tap.diag("%d/%d tensors bit-exact" % (good, count))
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
