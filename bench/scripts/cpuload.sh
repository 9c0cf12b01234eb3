#!/bin/bash
# cpuload.sh KVD SCENARIO [CONNECTIONS]
#
# CPU time per request of kvd and of kvbench: starts a fresh kvd (--sync
# $SYNC, default full), runs SCENARIO for 6 s and reads both processes'
# user+system time from /proc/PID/stat over the middle 3 s.
#
# Needs kvbench at $KVBENCH (default /tmp/kvbench); uses 127.0.0.1:18080.
set -eu
kvd=$1 scenario=$2 conns=${3:-64}
. "$(dirname "$0")/fresh-kvd.sh"
report=$(mktemp)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sample() {
	"$kvbench" -url "http://$addr" -scenario "$scenario" -c "$conns" -d 6s -quiet -fresh -json >"$report" &
	bpid=$!
	sleep 1.5
	k0=$(ticks $kvd_pid) b0=$(ticks $bpid) t0=$(date +%s.%N)
	sleep 3
	k1=$(ticks $kvd_pid) b1=$(ticks $bpid) t1=$(date +%s.%N)
	wait $bpid
}
with_fresh_kvd "$kvd" sample
python3 - "$report" "$scenario" "$k0" "$k1" "$b0" "$b1" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
report, scenario = sys.argv[1], sys.argv[2]
k0, k1, b0, b1, t0, t1, hz = map(float, sys.argv[3:])
rps = json.load(open(report))["throughput_rps"]
per = lambda a, b: (b - a) / hz * 1e6 / (rps * (t1 - t0))
print("%s: %.0f req/s, kvd %.1f µs/req, kvbench %.1f µs/req" % (scenario, rps, per(k0, k1), per(b0, b1)))
PY
rm -f "$report"
