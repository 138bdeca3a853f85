#!/bin/sh
# run-bench.sh - ktx's speed on DeepSeek-V3-wide synthetic models, side by
# side with llama.cpp on the same files, with the quality figure of the same
# build beside it (issue 7).
#
# usage: bench/run-bench.sh [options] OUTDIR
#   OUTDIR              where the synthetic models go (GBs; never commit them)
#   --builddir DIR      the ktx build (default: the current directory)
#   --log FILE          the raw results, one JSON object a line (default:
#                       OUTDIR/bench-DATE.jsonl)
#   --layers N          blocks per model (default 2)
#   --runs N            alternating rounds; medians and spread (default 3)
#   --threads N         compute threads, ktx and llama.cpp alike (default:
#                       all CPUs)
#   --prompt-tokens N   prefill length (default 512; the ref path, the
#                       arithmetic definition rather than a contender, runs
#                       16 prompt tokens and 2 steps)
#   --gen-tokens N      decode steps (default 16)
#   --sessions N        the batched case (default 8)
#   --llama-bench PATH  also run llama.cpp's llama-bench on the same files
#   --llama-batched-bench PATH
#                       llama.cpp's batched case (default: llama-batched-bench
#                       beside llama-bench, when it is there)
#   --llama-no-mmap     llama.cpp reads the weights into memory (-lm none)
#                       instead of its default mapping, as ktx does by
#                       default (--load auto)
#   --vocab FILE        tokenizer GGUF the models copy (llama.cpp will not load
#                       a model without one; default: the oracle's DeepSeek-V3
#                       tokenizer when it is there)
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
# Each round, every measurement bracketed by the triad bandwidth probe: ktx
# fast 1 session (prefill, then decode), llama-bench (its prefill test, then
# its decode test), ktx fast N sessions, llama-batched-bench N sequences, ktx
# ref; odd rounds run llama.cpp before ktx so neither always goes first.
# llama.cpp runs with its defaults apart from -t and one repetition (the
# rounds are the repetitions); both engines warm up first (llama-bench's own
# warm-up pass, ktx-run --bench's untimed prefill).
# Prints medians [min-max] over the rounds; ratios are of the medians, with
# the spread of the per-round ratios; the bandwidth fraction of a run is
# weight bytes per token x tok/s over the mean of the triads around it.
# OpenMP threads wait passively unless OMP_WAIT_POLICY says otherwise: on a
# machine shared with other work, spinning waiters cost more than they save.
# llama.cpp gets the environment as it was.
set -eu
llama_wait=${OMP_WAIT_POLICY-}
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
lbatched=
lmmap=
vocab=
log=
mixes=ud-q2kxl,q4km
ref=1
while [ $# -gt 0 ]; do
	case $1 in
	--builddir) builddir=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--layers) layers=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--prompt-tokens) ptok=$2; shift 2 ;;
	--gen-tokens) gtok=$2; shift 2 ;;
	--sessions) nsess=$2; shift 2 ;;
	--llama-bench) llama=$2; shift 2 ;;
	--llama-batched-bench) lbatched=$2; shift 2 ;;
	--llama-no-mmap) lmmap=1; shift ;;
	--vocab) vocab=$2; shift 2 ;;
	--mixes) mixes=$2; shift 2 ;;
	--no-ref) ref=0; shift ;;
	-h|--help) sed -n '2,52p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
[ -z "$threads" ] && threads=$(getconf _NPROCESSORS_ONLN)
srcdir=$(cd "$(dirname "$0")/.." && pwd)
oracle=${KTX_ORACLE:-$srcdir/../shared/oracle}
[ -z "$vocab" ] && [ -f "$oracle/tokenizer/deepseek-v3.gguf" ] &&
    vocab=$oracle/tokenizer/deepseek-v3.gguf
if [ -n "$llama" ]; then
	[ -x "$llama" ] || { echo "run-bench.sh: $llama is not executable" >&2; exit 1; }
	[ -z "$lbatched" ] && [ -x "$(dirname "$llama")/llama-batched-bench" ] &&
	    lbatched=$(dirname "$llama")/llama-batched-bench
	[ -n "$vocab" ] || { echo "run-bench.sh: llama.cpp needs models with a tokenizer:" \
	    "give --vocab" >&2; exit 1; }
fi
mkdir -p "$out"
[ -z "$log" ] && log=$out/bench-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: >"$log"

# About 4 GB per Q2_K block, 7 GB per Q4_K block, plus 1.5 GB of head.
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
	    ${vocab:+--vocab "$vocab"} --name "bench-$1-$layers" -o "$2.tmp"
	mv "$2.tmp" "$2"
}

round=0
record() { # tag json
	printf '{"tag": "%s", "round": %d, "result": %s}\n' "$1" "$round" "$2" >>"$log"
}

probe() { # mix
	record "triad $1" "$("$triad" -t "$threads")"
}

# Runs a llama.cpp tool with the environment the script was started with.
llama_env() {
	if [ -n "$llama_wait" ]; then
		OMP_WAIT_POLICY=$llama_wait "$@"
	else
		(unset OMP_WAIT_POLICY; exec "$@")
	fi
}

ktx_one() { # mix file
	record "fast1 $1" "$("$run" -t "$threads" -m "$2" --bench --path fast \
	    --prompt-tokens "$ptok" --gen-tokens "$gtok" --sessions 1)"
	probe "$1"
}

llama_one() { # mix file
	[ -n "$llama" ] || return 0
	record "llama $1" "$(llama_env "$llama" -m "$2" -p "$ptok" -n "$gtok" -r 1 \
	    ${lmmap:+-lm none} -t "$threads" -o json 2>/dev/null | tr -d '\n')"
	probe "$1"
}

ktx_batched() { # mix file
	record "fastN $1" "$("$run" -t "$threads" -m "$2" --bench --path fast \
	    --prompt-tokens "$ptok" --gen-tokens "$gtok" --sessions "$nsess")"
	probe "$1"
}

# The N sequences share one 16-token prompt (-pps): only the decode figure
# (speed_tg, all sequences together) is compared.
llama_batched() { # mix file
	[ -n "$lbatched" ] || return 0
	record "llama-batched $1" "$(llama_env "$lbatched" -m "$2" -c 1024 -npp 16 \
	    -ntg "$gtok" -npl "$nsess" -pps ${lmmap:+-lm none} -t "$threads" \
	    --output-format jsonl 2>/dev/null |
	    grep '^{')"
	probe "$1"
}

# The quality figure of this build: fast path against the float reference
# of the quantized oracle models (what tests/oracle/test_kl.py gates).
if [ -d "$oracle/models" ]; then
	ids=$(python3 -c "import json,sys; print(','.join(map(str, [p for p in json.load(open(sys.argv[1]))['prompts'] if p['name'] == 'p_long'][0]['tokens'])))" "$oracle/prompts.json")
	for m in v3ud-q2kxl v3mla-q8q4 v3mla-iqmix; do
		r=$("$run" -t "$threads" -m "$oracle/models/$m.gguf" --tokens "$ids" \
		    --kl-divergence --kl-reference "$oracle/reference/$m.p_long.logits.f32")
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
		record "kl $mix" "$("$run" -t "$threads" -m "$f" \
		    --tokens 11,2222,333,44444,5555,666 --kl-divergence)"
	fi
	round=0
	while [ "$round" -lt "$runs" ]; do
		probe "$mix"
		if [ $((round % 2)) = 0 ]; then
			ktx_one "$mix" "$f"
			llama_one "$mix" "$f"
			ktx_batched "$mix" "$f"
			llama_batched "$mix" "$f"
		else
			llama_one "$mix" "$f"
			ktx_one "$mix" "$f"
			llama_batched "$mix" "$f"
			ktx_batched "$mix" "$f"
		fi
		if [ "$ref" = 1 ]; then
			record "ref1 $mix" "$("$run" -t "$threads" -m "$f" --bench --path ref \
			    --prompt-tokens 16 --gen-tokens 2 --sessions 1)"
			probe "$mix"
		fi
		round=$((round + 1))
	done
done

python3 - "$log" "$layers" <<'PY'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1])]
layers = sys.argv[2]
med = statistics.median

def spread(v, fmt="%.2f"):
    if not v:
        return "-"
    return (fmt + " [" + fmt + "-" + fmt + "]") % (med(v), min(v), max(v))

# Each measurement's bandwidth: the mean of the triads just before and after it.
def bracket(i, mix):
    tri = "triad " + mix
    before = [r for r in rows[:i] if r["tag"] == tri]
    after = [r for r in rows[i + 1:] if r["tag"] == tri]
    v = [x["result"]["triad_gbs"] for x in before[-1:] + after[:1]]
    return sum(v) / len(v) if v else None

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
for m in mixes:
    # (round, value, bandwidth) per measurement kind
    got = {}
    def put(kind, r, v, i):
        got.setdefault(kind, []).append((r["round"], v, bracket(i, m)))
    gbt = None
    info = {}
    for i, r in enumerate(rows):
        kind, _, mix = r["tag"].partition(" ")
        d = r["result"]
        if mix != m or kind == "kl":
            continue
        if kind in ("fast1", "fastN", "ref1"):
            put(kind + " pre", r, d["prefill_tok_s"], i)
            put(kind + " dec", r, d["decode_tok_s"], i)
            if kind == "fast1":
                gbt = d["weight_bytes_per_token"] / 1e9
                info["ktx"] = "ktx: %d threads, cpu level %s, kernels %s" % (
                    d["threads"], d["cpu_level"],
                    ", ".join("%s %s" % kv for kv in d["kernels"].items()))
            if kind == "fastN":
                info["n"] = d["sessions"]
        elif kind == "llama":
            # llama-bench: one object per test, prompt (n_gen 0) then generation
            for t in d:
                put("llama pre" if t["n_gen"] == 0 else "llama dec", r, t["avg_ts"], i)
            info["llama"] = "llama.cpp: build %s (%s), %s threads, %s" % (
                d[0].get("build_commit"), d[0].get("build_number"), d[0].get("n_threads"),
                d[0].get("cpu_info", ""))
        elif kind == "llama-batched":
            put("llamaN dec", r, d["speed_tg"], i)
        elif kind == "triad":
            got.setdefault("triad", []).append((r["round"], d["triad_gbs"], None))
    def vals(k):
        return [v for _, v, _ in got.get(k, [])]
    def ratio(a, b):
        va, vb = vals(a), vals(b)
        if not va or not vb:
            return "-"
        pr = {}
        for rd, v, _ in got[a]:
            pr.setdefault(rd, [None, None])[0] = v
        for rd, v, _ in got[b]:
            pr.setdefault(rd, [None, None])[1] = v
        per = [x / y for x, y in pr.values() if x is not None and y]
        return "%.2fx [%.2f-%.2f]" % (med(va) / med(vb), min(per), max(per))
    def frac(k):
        v = [100 * x * gbt / bw for _, x, bw in got.get(k, []) if bw]
        return spread(v, "%.0f") + " %" if v and gbt else "-"
    n = info.get("n", "N")
    print()
    print("%s, %s layer(s), %d rounds; weights read per token %s GB; triad GB/s %s" % (
        m, layers, len(set(rd for rd, _, _ in got.get("triad", []))),
        "%.3f" % gbt if gbt else "-", spread(vals("triad"), "%.1f")))
    fmt = "  %-28s %-22s %-22s %s"
    print(fmt % ("", "ktx", "llama.cpp", "ktx / llama.cpp"))
    for label, a, b in (("prefill tok/s", "fast1 pre", "llama pre"),
                        ("decode tok/s, 1 session", "fast1 dec", "llama dec"),
                        ("decode tok/s, %s sessions" % n, "fastN dec", "llamaN dec")):
        print(fmt % (label, spread(vals(a)), spread(vals(b)), ratio(a, b)))
    print(fmt % ("decode, % of triad", frac("fast1 dec"), frac("llama dec"), ""))
    print(fmt % ("batched / single decode", ratio("fastN dec", "fast1 dec"),
                 ratio("llamaN dec", "llama dec"), ""))
    if "ref1 pre" in got:
        print(fmt % ("ktx ref path tok/s", "prefill " + spread(vals("ref1 pre")),
                     "decode " + spread(vals("ref1 dec")), ""))
    for k in ("ktx", "llama"):
        if k in info:
            print("  " + info[k])
PY
