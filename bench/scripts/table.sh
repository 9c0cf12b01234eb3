#!/bin/bash
# table.sh KVD
#
# The results table of bench/README.md: for --sync full, then normal, a
# fresh kvd on an empty data directory, each scenario 8 s on a fresh
# database, and one markdown row per scenario with req/s, the ratio to
# that kvd's noop and p99 (batch-set adds items/s; cas adds won/s). The
# counting scenarios run with -verify, so a lost or doubled write fails.
#
# Needs kvbench at $KVBENCH (default /tmp/kvbench); uses 127.0.0.1:18080.
set -eu
kvd=$1
. "$(dirname "$0")/fresh-kvd.sh"
out=$(mktemp -d)
rows=(
	"noop 64 -scenario noop -c 64"
	"get 64 -scenario get -c 64"
	"put 64 -scenario put -c 64"
	"mixed 64 -scenario mixed -c 64"
	"incr-hot 64 -scenario incr-hot -c 64 -verify"
	"incr-hot 1 -scenario incr-hot -c 1 -verify"
	"incr-spread 64 -scenario incr-spread -c 64 -verify"
	"cas 64 -scenario cas -c 64 -verify"
	"batch-set 64 -scenario batch-set -c 64"
	"batch-set 8 -scenario batch-set -c 8"
)
run_rows() {
	for row in "${rows[@]}"; do
		read -r name conns args <<<"$row"
		# shellcheck disable=SC2086 # args holds the scenario's flags
		"$kvbench" -url "http://$addr" -d 8s -quiet -fresh -json $args >"$out/$SYNC-$name-$conns.json"
	done
}
for sync in full normal; do
	SYNC=$sync with_fresh_kvd "$kvd" run_rows
done
python3 - "$out" "${rows[@]}" <<'PY'
import json, sys
out, rows = sys.argv[1], [r.split()[:2] for r in sys.argv[2:]]
def cell(sync, name, conns):
    d = json.load(open("%s/%s-%s-%s.json" % (out, sync, name, conns)))
    noop = json.load(open("%s/%s-noop-64.json" % (out, sync)))["throughput_rps"]
    rps = "{:,.0f}".format(d["throughput_rps"])
    if name == "cas":
        rps += " / {:,.0f}".format(d["ok_rps"])
    if name == "batch-set":
        rps += " ({:,.0f} items/s)".format(d["items_per_s"])
    return "%s | %.2f | %.1f ms" % (rps, d["throughput_rps"] / noop, d["latency_ms"]["p99"])
print("| scenario | c | `--sync full` req/s | × noop | p99 | `--sync normal` req/s | × noop | p99 |")
print("|---|---|---|---|---|---|---|---|")
for name, conns in rows:
    print("| %s | %s | %s | %s |" % (name, conns, cell("full", name, conns), cell("normal", name, conns)))
PY
rm -rf "$out"
