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
kvbench=${KVBENCH:-/tmp/kvbench}
addr=127.0.0.1:18080
data=$(mktemp -d) report=$(mktemp)
"$kvd" --listen "$addr" --data-dir "$data" --sync "${SYNC:-full}" --log-level warn >/dev/null 2>&1 &
kpid=$!
sleep 0.5
"$kvbench" -url "http://$addr" -scenario "$scenario" -c "$conns" -d 6s -quiet -fresh -json >"$report" &
bpid=$!
sleep 1.5
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
k0=$(ticks $kpid) b0=$(ticks $bpid) t0=$(date +%s.%N)
sleep 3
k1=$(ticks $kpid) b1=$(ticks $bpid) t1=$(date +%s.%N)
wait $bpid
kill $kpid
wait $kpid || true
python3 - "$report" "$scenario" "$k0" "$k1" "$b0" "$b1" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
report, scenario = sys.argv[1], sys.argv[2]
k0, k1, b0, b1, t0, t1, hz = map(float, sys.argv[3:])
rps = json.load(open(report))["throughput_rps"]
per = lambda a, b: (b - a) / hz * 1e6 / (rps * (t1 - t0))
print("%s: %.0f req/s, kvd %.1f µs/req, kvbench %.1f µs/req" % (scenario, rps, per(k0, k1), per(b0, b1)))
PY
rm -rf "$data" "$report"
