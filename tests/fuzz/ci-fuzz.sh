#!/bin/sh
# ci-fuzz.sh - a short libFuzzer run of every fuzz target, for CI.
#
#   tests/fuzz/ci-fuzz.sh BUILDDIR [SECONDS]
#
# Configures an out-of-tree clang build with --enable-fuzzing and
# --enable-sanitizers in BUILDDIR (once; a BUILDDIR that already has a
# Makefile is reused), builds only the libFuzzer programs, and runs each for
# SECONDS (default 30) on a copy of its committed corpus. Prints TAP, one
# line per target: "ok" when the run found nothing; otherwise the crash,
# leak or out-of-memory input's path in a diagnostic. Needs clang with its
# runtime libraries (Debian 12: clang-14 libclang-rt-14-dev libomp-14-dev).
# Exits 0 only when every target passed.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -lt 1 ]; then
	echo "usage: $0 BUILDDIR [SECONDS]" >&2
	exit 2
fi
secs=${2:-30}
targets="proto gguf tokenize chat"
mkdir -p "$1" || exit 1
build=$(cd "$1" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

set -- $targets
echo "1..$#"
bail() {
	echo "Bail out! $1 failed; the last lines of $2:"
	tail -n 20 "$2" | sed 's/^/# /'
	exit 1
}
if [ ! -f "$build/Makefile" ]; then
	(cd "$build" && CC=${CC:-clang} "$top/configure" --enable-fuzzing --enable-sanitizers) \
	    > "$build/ci-fuzz-configure.log" 2>&1 || bail configure "$build/ci-fuzz-configure.log"
fi
progs=
for t in $targets; do
	progs="$progs tests/fuzz/fuzz_$t"
done
# shellcheck disable=SC2086
make -C "$build" -j"$jobs" $progs > "$build/ci-fuzz-make.log" 2>&1 ||
	bail make "$build/ci-fuzz-make.log"

status=0
i=0
for t in $targets; do
	i=$((i + 1))
	work="$build/fuzz-work/$t"
	rm -rf "$work"
	mkdir -p "$work/corpus"
	cp "$top/tests/fuzz/corpus/$t"/* "$work/corpus/"
	# A single allocation over 512 MiB or a run over 1 GiB is a finding:
	# no input of a few kilobytes needs that much.
	if KTX_SRCDIR="$top" "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=20 \
	    -rss_limit_mb=1024 -malloc_limit_mb=512 -print_final_stats=1 \
	    -artifact_prefix="$work/" "$work/corpus" > "$work/log" 2>&1; then
		echo "ok $i - fuzz_$t ran ${secs}s without a finding"
	else
		status=1
		echo "not ok $i - fuzz_$t found a crash, leak, timeout or memory blow-up"
		sed -n 's/.*Test unit written to \(.*\)$/# input: \1/p' "$work/log"
		grep -E 'ERROR|runtime error|SUMMARY|Assertion' "$work/log" | head -n 5 | sed 's/^/# /'
		echo "# log: $work/log"
	fi
	sed -n 's/^stat::number_of_executed_units: */# runs: /p;
	    s/^stat::average_exec_per_sec: */# runs per second: /p;
	    s/^stat::peak_rss_mb: */# peak RSS MiB: /p' "$work/log"
done
exit $status
