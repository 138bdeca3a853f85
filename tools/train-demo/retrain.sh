#!/bin/sh
# retrain.sh - rebuild models/demo.gguf from scratch: text, vocabulary,
# tokens, training, export, evaluation, plot. See README.md.
#
#   tools/train-demo/retrain.sh BUILDDIR FULL-VOCAB.gguf WORKDIR
#
# BUILDDIR holds built ktx-run and ktx-demo-export; FULL-VOCAB.gguf is the
# real DeepSeek-V3/R1 vocabulary (a vocabulary-only GGUF, for instance the
# test oracle's tokenizer/deepseek-v3.gguf); WORKDIR receives everything
# that is not shipped. Writes models/demo.gguf and, in tools/train-demo/,
# curve.csv, curve.png, heldout.json, heldout-test.txt and heldout-test.ids.
# Takes about an hour on one core; uses one thread.
set -eu

if [ $# -ne 3 ]; then
	echo "usage: $0 BUILDDIR FULL-VOCAB.gguf WORKDIR" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
full=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
py=/usr/bin/python3	# Debian's, with python3-torch
mkdir -p "$work"

# Large temporary tensors come from the heap and stay there: without this,
# glibc maps and unmaps them every step and training spends a third of its
# time in page faults.
MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=4000000000
export MALLOC_MMAP_THRESHOLD_ MALLOC_TRIM_THRESHOLD_

bible -f Gen1:1-Rev22:21 >"$work/kjv.txt"
$py "$here/mkvocab.py" "$full" 4000 "$work/vocab.gguf"
$py "$here/mkcorpus.py" "$work/kjv.txt" "$work/corpus"
"$build/ktx-run" -m "$work/vocab.gguf" --special --tokenize "$work/corpus/train.txt" >"$work/train.ids"
"$build/ktx-run" -m "$work/vocab.gguf" --tokenize "$work/corpus/heldout.txt" >"$work/heldout.ids"
"$build/ktx-run" -m "$work/vocab.gguf" --tokenize "$work/corpus/heldout-test.txt" >"$work/heldout-test.ids"

resume=
[ -f "$work/run/ckpt.pt" ] && resume=--resume
$py "$here/train.py" --train-ids "$work/train.ids" --heldout-ids "$work/heldout.ids" \
    --out "$work/run" $resume
"$build/ktx-demo-export" "$work/run/dump" "$work/vocab.gguf" "$top/models/demo.gguf"

cp "$work/corpus/heldout-test.txt" "$work/heldout-test.ids" "$work/run/curve.csv" "$here/"
$py "$here/evaluate.py" "$top/models/demo.gguf" perplexity "$work/heldout-full.json" \
    --heldout-ids "$work/heldout.ids" --heldout-text "$work/corpus/heldout.txt" --train-ids "$work/train.ids"
(cd "$top" && $py "$here/evaluate.py" models/demo.gguf perplexity tools/train-demo/heldout.json \
    --heldout-ids tools/train-demo/heldout-test.ids --heldout-text tools/train-demo/heldout-test.txt \
    --train-ids "$work/train.ids")
unigram=$($py -c 'import json, sys; print(json.load(open(sys.argv[1]))["perplexity_unigram"])' \
    "$work/heldout-full.json")
$py "$here/plot.py" "$here/curve.csv" "$here/curve.png" "$unigram"
