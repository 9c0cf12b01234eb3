#!/bin/bash
# watch_rss.sh KVD KVBENCH [WATCHERS]
#
# Memory of idle watchers: starts kvd, notes its VmRSS, then has kvbench
# open WATCHERS (default 10000) watch streams, each on a key of its own,
# with writes trickling at 5/s (so the streams are idle), and notes kvd's
# VmRSS while they are all open. Prints (after - before) / WATCHERS: the
# memory one idle watcher costs in kvd (socket buffers are kernel memory,
# outside RSS). Raises the open-file limit for both processes first.
#
# Build both from the tree to measure:
#   go build -o /tmp/kvd-w ./cmd/kvd && go build -o /tmp/kvbench-w ./cmd/kvbench
# Uses 127.0.0.1:18091 and a temporary data directory; stops kvd itself.
set -eu
kvd=$1 kvbench=$2 n=${3:-10000}
ulimit -n "$(ulimit -Hn)"
addr=127.0.0.1:18091
data=$(mktemp -d)
"$kvd" --listen "$addr" --data-dir "$data" --log-level warn --max-open-dbs 16 --max-connections $((n * 9 / 8 + 100)) >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do
	curl -fs "http://$addr/healthz" >/dev/null && break
	sleep 0.1
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
# Go's own accounting: heap in use and goroutine stacks (RSS also holds
# the heap's slack, up to GOGC=100 over what is live).
gomem() { curl -fs "http://$addr/metrics" | awk '/^go_memstats_(heap_inuse|stack_inuse)_bytes / {printf "%s=%.1fMiB ", $1, $2 / 1048576}'; }
curl -fs -X PUT "http://$addr/api/v1/sqlite/kv/warm?db=w&create_db_if_missing=true" --data-binary x >/dev/null
before=$(rss)
echo "before: $(gomem)"
"$kvbench" -url "http://$addr" -db w -scenario watch -watchers "$n" -watch-each -rate 5 -c 2 -d 40s -quiet >"$data/report" &
bench=$!
open=0
for _ in $(seq 600); do # wait until every stream is open
	open=$(curl -fs "http://$addr/metrics" | awk '/^kvd_connections / {print $2}')
	[ "${open%.*}" -ge "$n" ] && break
	sleep 0.1
done
sleep 5
after=$(rss)
echo "with the watchers: $(gomem)"
echo "kvd VmRSS before: $((before / 1024)) MiB; with $open connections, $n idle watchers: $((after / 1024)) MiB"
echo "per watcher: $(( (after - before) * 1024 / n )) bytes"
wait "$bench" || true
grep -E 'watchers|event latency' "$data/report"
