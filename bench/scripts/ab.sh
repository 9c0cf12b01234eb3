#!/bin/bash
# ab.sh KVD_A KVD_B SCENARIO [ROUNDS]
#
# Compares two kvd binaries on one scenario, alternating A and B round by
# round so that drifts of the machine hit both alike. Each round starts a
# fresh kvd (--sync $SYNC, default full; empty data directory), runs noop
# then SCENARIO (4 s each, 64 connections, fresh database) and prints
# both throughputs. Last come each binary's medians, and its mean ratio to
# noop with that mean's standard error: one build's median moves by ±0.03
# from run to run, and the error says how far to trust the mean.
# batch-set is counted in items/s.
#
# Needs kvbench at $KVBENCH (default /tmp/kvbench); uses 127.0.0.1:18080.
set -eu
a=$1 b=$2 scenario=$3 rounds=${4:-6}
. "$(dirname "$0")/fresh-kvd.sh"
out=$(mktemp)
noop_then_scenario() { printf '%s %s' "$(measure noop "${DURATION:-4s}")" "$(measure "$scenario" "${DURATION:-4s}")"; }
for _ in $(seq "$rounds"); do
	for kvd in "$a" "$b"; do
		read -r noop x <<<"$(with_fresh_kvd "$kvd" noop_then_scenario)"
		printf '%s %.0f %.0f\n' "$kvd" "$noop" "$x" | tee -a "$out"
	done
done
python3 - "$out" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for kvd in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == kvd]
    ratios = [float(r[2]) / float(r[1]) for r in mine]
    se = statistics.stdev(ratios) / len(ratios) ** 0.5 if len(ratios) > 1 else float("nan")
    print("%s: median %.0f, median ratio to noop %.3f (mean %.3f ± %.3f, %d rounds)" % (kvd,
        statistics.median(float(r[2]) for r in mine),
        statistics.median(ratios), statistics.mean(ratios), se, len(ratios)))
PY
rm -f "$out"
