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
kvbench=${KVBENCH:-/tmp/kvbench}
addr=127.0.0.1:18080
data=$(mktemp -d)
out=$(mktemp)
# shellcheck disable=SC2086 # the flags are words
"$kvd" --listen "$addr" --data-dir "$data" --sync "${SYNC:-full}" --log-level warn ${KVD_FLAGS:-} >/dev/null 2>&1 &
pid=$!
sleep 0.5
if ! kill -0 "$pid" 2>/dev/null; then
	echo "steady.sh: $kvd did not start (is $addr taken?)" >&2
	exit 1
fi
"$kvbench" -url "http://$addr" -d "$duration" -c 64 -quiet -fresh -json -scenario "$scenario" >"$out"
kill "$pid"
wait "$pid" || true
python3 - "$kvd" "$out" "$data" <<'PY'
import glob, json, sqlite3, sys
kvd, out, data = sys.argv[1:]
d = json.load(open(out))
per_request = (d.get("items_per_s") or d["throughput_rps"]) / d["throughput_rps"]
half = d["timeline"][len(d["timeline"]) // 2:]
db = sqlite3.connect(glob.glob(data + "/*.db")[0])
avg, most = db.execute('SELECT avg(n), max(n) FROM (SELECT count(*) AS n FROM "kv_store:history" GROUP BY key)').fetchone()
print("%s: %.0f/s over the run, %.0f/s over its second half; versions per key %.0f on average, %d at most" % (
    kvd, d.get("items_per_s") or d["throughput_rps"], sum(p["rps"] for p in half) / len(half) * per_request, avg, most))
PY
rm -rf "$data" "$out"
