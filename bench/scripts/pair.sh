#!/bin/bash
# pair.sh KVD_A KVD_B SCENARIO [ROUNDS]
#
# Compares two kvd binaries on one scenario by its own throughput, for a
# difference smaller than ab.sh can see. Each round runs A and B back to
# back (the order flips every round), each a fresh kvd (--sync $SYNC,
# default full; empty data directory) and 3 s of SCENARIO at 64
# connections. The machine's slow and fast spells last minutes, so the
# two runs of a round share one; what is left is B's gain over A in each
# round, whose mean is printed with its standard error. batch-set is
# counted in items/s.
#
# Needs kvbench at $KVBENCH (default /tmp/kvbench); uses 127.0.0.1:18080.
set -eu
a=$1 b=$2 scenario=$3 rounds=${4:-20}
. "$(dirname "$0")/fresh-kvd.sh"
out=$(mktemp)
for i in $(seq "$rounds"); do
	order="A B"
	if [ $((i % 2)) = 1 ]; then order="B A"; fi
	for which in $order; do
		kvd=$a
		if [ "$which" = B ]; then kvd=$b; fi
		x=$(with_fresh_kvd "$kvd" measure "$scenario" 3s)
		printf '%s %s %s %.0f\n' "$i" "$which" "$kvd" "$x" | tee -a "$out"
	done
done
python3 - "$out" "$a" "$b" <<'PY'
import math, statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    i, which, _, x = line.split()
    rounds.setdefault(i, {})[which] = float(x)
gains = [math.log(r["B"] / r["A"]) for r in rounds.values()]
se = statistics.stdev(gains) / math.sqrt(len(gains)) if len(gains) > 1 else float("nan")
for which, kvd in (("A", sys.argv[2]), ("B", sys.argv[3])):
    print("%s %s: median %.0f" % (which, kvd, statistics.median(r[which] for r in rounds.values())))
print("B against A: %+.1f%% ± %.1f%% (mean of %d rounds ± its standard error), B ahead in %d" % (
    100 * statistics.mean(gains), 100 * se, len(gains), sum(g > 0 for g in gains)))
PY
rm -f "$out"
