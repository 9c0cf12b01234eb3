#!/bin/bash
# router.sh [ROUNDS] [SCENARIO...]
#
# The router's cost: one kvd cluster node (etcd, its Litestream sidecar,
# --sync full) loaded by kvbench directly and through HAProxy, running
# deploy/cluster/local/haproxy.cfg with the node as its only live server;
# the two alternate round by round. Prints, per scenario, the median
# throughput each way, their ratio, and HAProxy's CPU time per request
# (from /proc), which says how many requests one core of a router host
# passes.
#
# Needs kvd at $KVD (default /tmp/kvd), kvbench at $KVBENCH (default
# /tmp/kvbench), etcd, haproxy and litestream on PATH. 64 connections,
# $DURATION (default 4s) per run, -dbs 8.
set -eu
rounds=${1:-5}
shift || true
scenarios=${*:-noop get put incr-spread}
kvbench=${KVBENCH:-/tmp/kvbench}
. "$(dirname "$0")/cluster-lib.sh"
start_etcd
start_node 1
start_haproxy
cpu() { awk '{print $14 + $15}' "/proc/$haproxy_pid/stat"; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)

out="$dir/rows"
for _ in $(seq "$rounds"); do
	for scenario in $scenarios; do
		for way in direct haproxy; do
			port=28081
			[ "$way" = haproxy ] && port=28080
			before=$(cpu)
			"$kvbench" -url "http://127.0.0.1:$port" -d "${DURATION:-4s}" -c 64 -dbs 8 -quiet -json -scenario "$scenario" >"$dir/run.json"
			after=$(cpu)
			python3 - "$dir/run.json" "$scenario" "$way" "$((after - before))" "$hz" >>"$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ops = d["requests"]
rps = d["ok_rps"]  # answered 2xx per second
ticks, hz = int(sys.argv[4]), int(sys.argv[5])
print(sys.argv[2], sys.argv[3], rps, ticks / hz / max(ops, 1) * 1e6)
PY
		done
	done
done
python3 - "$out" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("%-12s %12s %12s %7s %18s" % ("scenario", "direct/s", "haproxy/s", "ratio", "haproxy CPU/req"))
for s in dict.fromkeys(r[0] for r in rows):
    d = statistics.median(float(r[2]) for r in rows if r[0] == s and r[1] == "direct")
    h = statistics.median(float(r[2]) for r in rows if r[0] == s and r[1] == "haproxy")
    c = statistics.median(float(r[3]) for r in rows if r[0] == s and r[1] == "haproxy")
    print("%-12s %12.0f %12.0f %7.3f %15.1f µs" % (s, d, h, h / d, c))
PY
