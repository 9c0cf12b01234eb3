#!/bin/bash
# rounds.sh KVD [ROUNDS]
#
# The spread of the targets' figures: one fresh kvd (--sync $SYNC,
# default full), then ROUNDS (default 5) rounds of noop, incr-hot at 64
# and at 1 connection, get and batch-set (5 s each, fresh database
# each). Per scenario it prints throughput/p99, and items/s for
# batch-set; then the ratios of incr-hot and get to the round's noop, and
# their medians.
#
# Needs kvbench at $KVBENCH (default /tmp/kvbench); uses 127.0.0.1:18080.
set -eu
kvd=$1 rounds=${2:-5}
. "$(dirname "$0")/fresh-kvd.sh"
out=$(mktemp)
run_rounds() {
	for r in $(seq "$rounds"); do
		line=""
		for args in "noop -c 64" "incr-hot -c 64" "incr-hot -c 1" "get -c 64" "batch-set -c 64"; do
			# shellcheck disable=SC2086 # args holds a scenario and its flags
			line="$line $("$kvbench" -url "http://$addr" -d 5s -quiet -fresh -json -scenario $args |
				python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f/%.1f/%.0f" % (d["throughput_rps"], d["latency_ms"]["p99"], d.get("items_per_s", 0)))')"
		done
		echo "$line" | tee -a "$out" | awk -v r="$r" '{printf "round %s: noop %s | incr-hot 64 %s | incr-hot 1 %s | get %s | batch-set %s (req/s/p99 ms/items/s)\n", r, $1, $2, $3, $4, $5}'
	done
}
with_fresh_kvd "$kvd" run_rounds
python3 - "$out" <<'PY'
import statistics, sys
rows = [[[float(x) for x in f.split("/")] for f in line.split()] for line in open(sys.argv[1])]
for name, i in (("incr-hot", 1), ("get", 3)):
    ratios = [r[i][0] / r[0][0] for r in rows]
    print("%s / noop: %s, median %.2f" % (name, " ".join("%.2f" % x for x in ratios), statistics.median(ratios)))
print("batch-set items/s median: %.0f" % statistics.median(r[4][2] for r in rows))
PY
rm -f "$out"
