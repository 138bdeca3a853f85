#!/bin/sh
# run_fuzz_proto.sh - a short libFuzzer run of the protocol decoder, for
# make check under --enable-fuzzing. Starts from a copy of the committed
# corpus; KTX_FUZZ_SECONDS sets the length (default 20). Prints TAP.
secs=${KTX_FUZZ_SECONDS:-20}
fuzzer="$KTX_BUILDDIR/tests/fuzz/fuzz_proto"
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
cp "$KTX_SRCDIR"/tests/fuzz/corpus/proto/* "$work/"
if "$fuzzer" -max_total_time="$secs" -rss_limit_mb=512 -print_final_stats=1 \
    -artifact_prefix="$KTX_BUILDDIR/fuzz_proto-" "$work" > "$work/log" 2>&1; then
	echo "ok 1 - fuzz_proto ran ${secs}s without a finding"
else
	echo "not ok 1 - fuzz_proto found a crash, leak or memory blow-up"
	sed -n '/ERROR\|runtime error\|SUMMARY\|Test unit written/p' "$work/log" | sed 's/^/# /'
fi
grep 'stat::number_of_executed_units\|stat::peak_rss_mb' "$work/log" | sed 's/^/# /'
echo "1..1"
