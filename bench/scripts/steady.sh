#!/bin/bash
# steady.sh KVD SCENARIO DURATION
#
# Throughput once retention runs: ab.sh's 4 s end before any key of a
# fresh database reaches --history-keep (1000 versions; batch-set's 1000
# keys reach it after about 5 s, incr-spread's after about a minute).
# Starts a fresh kvd (--sync $SYNC, default full; $KVD_FLAGS added, e.g.
# --history-keep 100), runs SCENARIO at 64 connections for DURATION, and
# prints the throughput over the whole run and over its second half
# (items/s for batch-set), and the history versions per key it left,
# on average and at most.
#
# Needs kvbench at $KVBENCH (default /tmp/kvbench) and python3; uses
# 127.0.0.1:18080.
set -eu
kvd=$1 scenario=$2 duration=$3
. "$(dirname "$0")/fresh-kvd.sh"
run_and_count() {
	"$kvbench" -url "http://$addr" -d "$duration" -c 64 -quiet -fresh -json -scenario "$scenario" |
		python3 -c '
import glob, json, sqlite3, sys
kvd, data = sys.argv[1:]
d = json.load(sys.stdin)
per_request = (d.get("items_per_s") or d["throughput_rps"]) / d["throughput_rps"]
half = d["timeline"][len(d["timeline"]) // 2:]
db = sqlite3.connect(glob.glob(data + "/*.db")[0])  # WAL: read beside the running kvd
avg, most = db.execute("SELECT avg(n), max(n) FROM (SELECT count(*) AS n FROM \"kv_store:history\" GROUP BY key)").fetchone()
print("%s: %.0f/s over the run, %.0f/s over its second half; versions per key %.0f on average, %d at most" % (
    kvd, d.get("items_per_s") or d["throughput_rps"], sum(p["rps"] for p in half) / len(half) * per_request, avg, most))
' "$kvd" "$data"
}
with_fresh_kvd "$kvd" run_and_count
