#!/bin/sh
# run-bench.sh - ktx's speed on DeepSeek-V3-wide synthetic models, with the
# quality figure of the same build beside it (issue 7).
#
# usage: bench/run-bench.sh [options] OUTDIR
#   OUTDIR              where the synthetic models go (GBs; never commit them)
#   --builddir DIR      the ktx build (default: the current directory)
#   --layers N          blocks per model (default 2)
#   --runs N            alternating rounds; medians and spread (default 3)
#   --threads N         compute threads (default: all CPUs)
#   --prompt-tokens N   prefill length (default 512; the ref path, the
#                       arithmetic definition rather than a contender, runs
#                       16 prompt tokens and 2 steps)
#   --gen-tokens N      decode steps (default 16)
#   --sessions N        the batched case (default 8)
#   --llama-bench PATH  also run llama.cpp's llama-bench on the same files
#   --mixes LIST        ud-q2kxl,q4km (default both)
#   --no-ref            skip the reference path
#
# Models: ktx-mkmodel --preset v3 (hidden 7168, 256 routed experts of width
# 2048 with 8 used, 1 shared, q_lora 1536, kv_lora 512, 128 heads, rope 64,
# vocabulary 129280) with N MoE blocks (no dense block: 58 of R1's 61 are
# MoE), random blocks with valid scales (--fill blocks), in
#   ud-q2kxl: experts Q2_K (down Q3_K), attention Q4_K, shared Q5_K,
#             embeddings and output Q6_K (an R1 UD-Q2_K_XL-like mix);
#   q4km:     experts Q4_K (down Q6_K), attention, shared, embeddings Q4_K,
#             output Q6_K.
# Each round: triad, ktx fast 1 session, triad, ktx fast N sessions, triad,
# ktx ref (1 session), llama-bench when given, triad. Prints a table.
# OpenMP threads wait passively unless OMP_WAIT_POLICY says otherwise: on a
# machine shared with other work, spinning waiters cost more than they save.
set -eu
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMP_WAIT_POLICY

builddir=.
layers=2
runs=3
threads=
ptok=512
gtok=16
nsess=8
llama=
mixes=ud-q2kxl,q4km
ref=1
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) builddir=$2; shift 2 ;;
	--layers) layers=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--prompt-tokens) ptok=$2; shift 2 ;;
	--gen-tokens) gtok=$2; shift 2 ;;
	--sessions) nsess=$2; shift 2 ;;
	--llama-bench) llama=$2; shift 2 ;;
	--mixes) mixes=$2; shift 2 ;;
	--no-ref) ref=0; shift ;;
	-h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run-bench.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: bench/run-bench.sh [options] OUTDIR (--help)" >&2; exit 2; }
out=$1
run=$builddir/ktx-run
mk=$builddir/ktx-mkmodel
triad=$builddir/bench/triad
for p in "$run" "$mk" "$triad"; do
	[ -x "$p" ] || { echo "run-bench.sh: $p is not built (make; make bench/triad)" >&2; exit 1; }
done
mkdir -p "$out"
tflag=
[ -n "$threads" ] && tflag="-t $threads"
srcdir=$(cd "$(dirname "$0")/.." && pwd)
oracle=${KTX_ORACLE:-$srcdir/../shared/oracle}
log=$out/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: >"$log"

# About 4 GB per Q2_K block, 7 GB per Q4_K block, plus 1 GB of head.
need=$(( (layers * 7 + 2) * 1024 * 1024 ))
free=$(df -Pk "$out" | awk 'NR == 2 { print $4 }')
if [ "$free" -lt "$need" ]; then
	echo "run-bench.sh: $out has $((free / 1048576)) GiB free, the models need about" \
	    "$((need / 1048576)) GiB" >&2
	exit 1
fi

make_model() { # mix file
	[ -f "$2" ] && return 0
	case $1 in
	ud-q2kxl) types="--type-experts q2_K --type-experts-down q3_K --type-attn q4_K
	    --type-shexp q5_K --type-embd q6_K --type-output q6_K --type q4_K" ;;
	q4km) types="--type-experts q4_K --type-experts-down q6_K --type-attn q4_K
	    --type-shexp q4_K --type-embd q4_K --type-output q6_K --type q4_K" ;;
	*) echo "run-bench.sh: unknown mix $1" >&2; exit 2 ;;
	esac
	echo "making $2" >&2
	# shellcheck disable=SC2086
	"$mk" -q --preset v3 --layers "$layers" --dense 0 --fill blocks $types \
	    --name "bench-$1-$layers" -o "$2.tmp"
	mv "$2.tmp" "$2"
}

record() { # tag json
	printf '{"tag": "%s", "result": %s}\n' "$1" "$2" >>"$log"
}

probe() { # tag
	record "$1" "$("$triad" $tflag)"
}

# The quality figure of this build: fast path against the float reference
# of the quantized oracle models (what tests/oracle/test_kl.py gates).
if [ -d "$oracle/models" ]; then
	for m in v3ud-q2kxl v3mla-q8q4 v3mla-iqmix; do
		ids=$(python3 -c "import json,sys; print(','.join(map(str, [p for p in json.load(open(sys.argv[1]))['prompts'] if p['name'] == 'p_long'][0]['tokens'])))" "$oracle/prompts.json")
		r=$("$run" $tflag -m "$oracle/models/$m.gguf" --tokens "$ids" --kl-divergence \
		    --kl-reference "$oracle/reference/$m.p_long.logits.f32")
		record "kl $m" "$r"
	done
fi

for mix in $(echo "$mixes" | tr , ' '); do
	f=$out/bench-v3-$mix-L$layers.gguf
	make_model "$mix" "$f"
	# Warm the page cache so the first round does not time the disk.
	cat "$f" >/dev/null
	# The fast path against the reference on the wide model itself.
	if [ "$ref" = 1 ]; then
		record "kl $mix" "$("$run" $tflag -m "$f" --tokens 11,2222,333,44444,5555,666 \
		    --kl-divergence)"
	fi
	i=0
	while [ "$i" -lt "$runs" ]; do
		probe "triad $mix"
		record "fast1 $mix" "$("$run" $tflag -m "$f" --bench --path fast \
		    --prompt-tokens "$ptok" --gen-tokens "$gtok" --sessions 1)"
		probe "triad $mix"
		record "fastN $mix" "$("$run" $tflag -m "$f" --bench --path fast \
		    --prompt-tokens "$ptok" --gen-tokens "$gtok" --sessions "$nsess")"
		probe "triad $mix"
		if [ "$ref" = 1 ]; then
			record "ref1 $mix" "$("$run" $tflag -m "$f" --bench --path ref \
			    --prompt-tokens 16 --gen-tokens 2 --sessions 1)"
			probe "triad $mix"
		fi
		if [ -n "$llama" ]; then
			record "llama $mix" "$("$llama" -m "$f" -p "$ptok" -n "$gtok" \
			    ${threads:+-t "$threads"} -o json | tr -d '\n')"
			probe "triad $mix"
		fi
		i=$((i + 1))
	done
done

python3 - "$log" <<'PY'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1])]
def med(v):
    return "%.2f [%.2f-%.2f]" % (statistics.median(v), min(v), max(v)) if v else "-"
print("results: %s" % sys.argv[1])
for r in rows:
    if r["tag"].startswith("kl "):
        d = r["result"]
        print("KL %-12s %s vs %s: mean %.3g  max %.3g  top-1 %.4f  ppl %s / %s" % (
            r["tag"][3:], d["path"], d["base"], d["mean_kl"], d["max_kl"], d["top1"],
            d["ppl"], d["ppl_base"]))
mixes = []
for r in rows:
    m = r["tag"].split(" ", 1)[1]
    if not r["tag"].startswith("kl ") and m not in mixes:
        mixes.append(m)
print("%-9s %-22s %-26s %-26s %-12s %s" % ("mix", "run", "prefill tok/s", "decode tok/s",
                                          "GB/token", "decode GB/s / triad GB/s"))
for m in mixes:
    tri = [r["result"]["triad_gbs"] for r in rows if r["tag"] == "triad " + m]
    base = {}
    for kind, label in (("fast1", "ktx fast, 1 session"), ("fastN", "ktx fast, batched"),
                        ("ref1", "ktx ref, 1 session"), ("llama", "llama.cpp")):
        rs = [r["result"] for r in rows if r["tag"] == "%s %s" % (kind, m)]
        if not rs:
            continue
        if kind == "llama":
            pre = [x["avg_ts"] for y in rs for x in y if x.get("n_prompt", 0) > 0]
            dec = [x["avg_ts"] for y in rs for x in y if x.get("n_gen", 0) > 0]
            gbt = None
            label += " (-t %s)" % rs[0][0].get("n_threads", "?")
        else:
            pre = [x["prefill_tok_s"] for x in rs]
            dec = [x["decode_tok_s"] for x in rs]
            gbt = rs[0]["weight_bytes_per_token"] / 1e9
            label += " x%d" % rs[0]["sessions"] if kind == "fastN" else ""
        base[kind] = (statistics.median(pre) if pre else 0, statistics.median(dec) if dec else 0)
        frac = "-"
        if gbt and tri and kind != "fastN":
            frac = "%.1f / %.1f = %.0f%%" % (statistics.median(dec) * gbt, statistics.median(tri),
                                           100 * statistics.median(dec) * gbt / statistics.median(tri))
        print("%-9s %-22s %-26s %-26s %-12s %s" % (m, label, med(pre), med(dec),
                                                  "%.3f" % gbt if gbt else "-", frac))
    if "fast1" in base and "fastN" in base and base["fast1"][1]:
        print("%-9s batched / single decode: %.2fx" % (m, base["fastN"][1] / base["fast1"][1]))
    for other in ("ref1", "llama"):
        if "fast1" in base and other in base and base[other][0] and base[other][1]:
            print("%-9s fast / %s: prefill %.2fx, decode %.2fx" % (
                m, other, base["fast1"][0] / base[other][0], base["fast1"][1] / base[other][1]))
    print("%-9s triad GB/s: %s" % (m, med(tri)))
    if rows and any(r["tag"].startswith("fast1 ") for r in rows):
        k = next(r["result"] for r in rows if r["tag"] == "fast1 " + m)
        print("%-9s kernels: %s (level %s)" % (m, ", ".join("%s %s" % kv for kv in k["kernels"].items()),
                                              k["cpu_level"]))
PY
