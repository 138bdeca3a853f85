#!/usr/bin/python3
"""mkvocab.py - cut the real DeepSeek-V3/R1 vocabulary down for the demo model.

    mkvocab.py FULL-VOCAB.gguf N_NORMAL OUT.gguf

Keeps the N_NORMAL lowest normal ids of the full vocabulary (ids 3.. of
DeepSeek-V3: the 256 byte symbols come first, then tokens in merge order),
renumbered from 0, then the 20 special tokens the chat template and the
fill-in-the-middle / tool formats use, renumbered to N_NORMAL.. (BOS first,
EOS/pad second), and only those merges whose two parts and result all
survive. Because the kept tokens are a prefix of the merge order, every kept
multi-byte token keeps the merge that makes it, so the cut tokenizes any text
exactly as the real tokenizer would, only stopping earlier. With N_NORMAL
4000 the result equals the test oracle's deepseek-v3-cut.gguf.

Every other tokenizer.* key (pre-tokenizer, chat template, add_bos) is
copied; the deepseek2.* hyper-parameters of the full model are left out
(the demo model writes its own).
"""
import sys

import ggufpy

# The specials kept, as ids of the full DeepSeek-V3/R1 vocabulary: BOS, EOS,
# pad, then <think> </think>, FIM, <｜User｜> <｜Assistant｜>, <|EOT|> and the
# tool-call markers (128798-128814).
FULL_SPECIALS = [0, 1, 2] + list(range(128798, 128815))


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: mkvocab.py FULL-VOCAB.gguf N_NORMAL OUT.gguf")
    src = ggufpy.Reader(sys.argv[1])
    n_normal = int(sys.argv[2])
    tokens = src.value("tokenizer.ggml.tokens")
    types = src.value("tokenizer.ggml.token_type")
    merges = src.value("tokenizer.ggml.merges")
    if src.value("tokenizer.ggml.bos_token_id") != 0 or src.value("tokenizer.ggml.eos_token_id") != 1:
        sys.exit("mkvocab: expected the DeepSeek-V3 vocabulary (BOS 0, EOS 1)")

    keep = list(range(3, 3 + n_normal)) + FULL_SPECIALS
    if any(types[i] != 1 for i in keep[:n_normal]):
        sys.exit("mkvocab: a special token among the lowest %d normal ids" % n_normal)
    new_tokens = [tokens[i] for i in keep]
    new_types = [types[i] for i in keep]
    kept = set(new_tokens[:n_normal])
    new_merges = []
    for m in merges:
        a, b = m.split(" ")
        if a in kept and b in kept and a + b in kept:
            new_merges.append(m)

    w = ggufpy.Writer()
    w.add("general.architecture", ggufpy.STRING, "deepseek2")
    w.add("general.name", ggufpy.STRING,
          "DeepSeek-V3/R1 tokenizer cut to %d tokens (vocab only)" % len(new_tokens))
    w.add("deepseek2.vocab_size", ggufpy.UINT32, len(new_tokens))
    for key, (vt, v) in src.kv.items():
        if not key.startswith("tokenizer."):
            continue
        if key == "tokenizer.ggml.tokens":
            w.add(key, ggufpy.ARRAY, new_tokens, ggufpy.STRING)
        elif key == "tokenizer.ggml.token_type":
            w.add(key, ggufpy.ARRAY, new_types, v[0])
        elif key == "tokenizer.ggml.merges":
            w.add(key, ggufpy.ARRAY, new_merges, ggufpy.STRING)
        elif key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                     "tokenizer.ggml.padding_token_id"):
            w.add(key, vt, keep.index(v))
        elif vt == ggufpy.ARRAY:
            sys.exit("mkvocab: unexpected array key %s" % key)
        else:
            w.add(key, vt, v)
    w.write(sys.argv[3])
    print("mkvocab: %d tokens (%d normal, %d special), %d merges -> %s"
          % (len(new_tokens), n_normal, len(FULL_SPECIALS), len(new_merges), sys.argv[3]))


if __name__ == "__main__":
    main()
