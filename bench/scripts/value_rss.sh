#!/bin/bash
# value_rss.sh KVD
#
# Memory of one kvd for large writes: on a fresh kvd, one PUT of a 9 MiB
# binary value, three more, then ten at once, then a GET of each of the
# ten and 5 s at rest; then, on another fresh kvd, 25 PUTs of 10 MiB at
# once. Prints kvd's RSS (/proc/<pid>/status) after each step.
#
# Build KVD from the tree to measure: go build -o /tmp/kvd-x ./cmd/kvd.
# Uses 127.0.0.1:18090 and temporary data directories; stops kvd itself.
set -eu
kvd=$1
addr=127.0.0.1:18090
values=$(mktemp -d)
trap 'rm -rf "$values"' EXIT
head -c $((9 << 20)) /dev/urandom >"$values/9MiB"
head -c $((10 << 20)) /dev/urandom >"$values/10MiB"

# puts FILE FIRST COUNT sends COUNT PUTs of FILE at once, keys FIRST on.
puts() {
	local pids="" i
	for i in $(seq "$2" $(($2 + $3 - 1))); do
		curl -fs -o /dev/null -X PUT "http://$addr/api/v1/sqlite/kv/big$i?db=app&create_db_if_missing=true" \
			-H 'Content-Type: application/octet-stream' --data-binary @"$1" &
		pids="$pids $!"
	done
	wait $pids
}

# gets FIRST COUNT reads COUNT keys at once, FIRST on.
gets() {
	local pids="" i
	for i in $(seq "$1" $(($1 + $2 - 1))); do
		curl -fs -o /dev/null "http://$addr/api/v1/sqlite/kv/big$i?db=app" &
		pids="$pids $!"
	done
	wait $pids
}

# with_kvd COMMAND... runs COMMAND against a fresh kvd, pid in $pid.
with_kvd() {
	local data
	data=$(mktemp -d)
	"$kvd" --listen "$addr" --data-dir "$data" --log-level warn >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 50); do
		curl -fs "http://$addr/healthz" >/dev/null && break
		sleep 0.1
	done
	"$@"
	kill "$pid"
	wait "$pid" || true
	rm -rf "$data"
}

rss() { awk '/VmRSS/ {printf "%.0f MB", $2 * 1024 / 1e6}' "/proc/$pid/status"; }
steps() {
	printf 'start %s' "$(rss)"
	puts "$values/9MiB" 0 1 && printf ', 1 PUT of 9 MiB %s' "$(rss)"
	puts "$values/9MiB" 1 3 && printf ', 3 more %s' "$(rss)"
	puts "$values/9MiB" 4 10 && printf ', 10 more at once %s' "$(rss)"
	gets 4 10 && printf ', 10 GETs at once %s' "$(rss)"
	sleep 5 && printf ', 5 s later %s\n' "$(rss)"
}
at_once() { puts "$values/10MiB" 0 25 && printf '25 PUTs of 10 MiB at once: %s\n' "$(rss)"; }
with_kvd steps
with_kvd at_once
