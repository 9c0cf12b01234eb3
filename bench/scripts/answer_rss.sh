#!/bin/bash
# answer_rss.sh KVD [PAGES]
#
# Peak memory of one kvd for one history request over large values: writes
# 20 versions of a 4 MiB binary value (base64 in the answer, old and new
# value per entry), then asks for the key's history with limit=20 once,
# and with PAGES=all follows next_cursor to the end. Prints the answer
# bytes and kvd's VmHWM (peak RSS, /proc/<pid>/status) after the writes
# and after the reads: their difference is what the history cost.
#
# Build KVD from the tree to measure: go build -o /tmp/kvd-x ./cmd/kvd.
# Uses 127.0.0.1:18090 and a temporary data directory; stops kvd itself.
set -eu
kvd=$1 pages=${2:-one}
addr=127.0.0.1:18090
base="http://$addr/api/v1/sqlite/kv"
data=$(mktemp -d)
value="$data/value"
"$kvd" --listen "$addr" --data-dir "$data" --log-level warn >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do
	curl -fs "http://$addr/healthz" >/dev/null && break
	sleep 0.1
done
hwm() { awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$pid/status"; }
for i in $(seq 20); do
	head -c 4194304 /dev/urandom >"$value"
	curl -fs -X PUT "$base/doc?db=big&create_db_if_missing=true" -H 'Content-Type: application/octet-stream' \
		--data-binary @"$value" >/dev/null
done
echo "after 20 writes of 4 MiB: VmHWM $(hwm)"
query="db=big&limit=20"
total=0 requests=0
while :; do
	curl -fs "$base/doc/history?$query" -o "$data/answer"
	bytes=$(stat -c %s "$data/answer")
	total=$((total + bytes)) requests=$((requests + 1))
	cursor=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("next_cursor", ""))' "$data/answer")
	echo "history request $requests: $bytes bytes, $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["operations"]))' "$data/answer") writes, VmHWM $(hwm)"
	[ "$pages" = all ] && [ -n "$cursor" ] || break
	query="db=big&limit=20&cursor=$cursor"
done
echo "total: $requests requests, $total bytes; VmHWM $(hwm)"
