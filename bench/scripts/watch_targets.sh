#!/bin/bash
# watch_targets.sh KVD KVBENCH [OUTDIR]
#
# The watch targets, one kvd (default flags, --sync full), runs one after
# the other:
#   1. 1000 watchers, each on its own key, writes at 2000/s open loop
#      spread over those keys: event latency, lost, duplicated;
#   2. 100 watchers of one prefix, writes at 500/s into it (50,000
#      events/s out), with a 10 s CPU profile of kvd in the middle;
#   3. incr-hot at 64 connections, without and with one watcher of the
#      hot key (which must see every increment, in order).
# Reports and the profile go to OUTDIR (default /tmp/watch-targets).
#
# Build both from the tree to measure:
#   go build -o /tmp/kvd-w ./cmd/kvd && go build -o /tmp/kvbench-w ./cmd/kvbench
# Uses 127.0.0.1:18093 (and :18094 for pprof) and a temporary data
# directory; stops kvd itself.
set -eu
kvd=$1 kvbench=$2 out=${3:-/tmp/watch-targets}
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"
addr=127.0.0.1:18093
data=$(mktemp -d)
"$kvd" --listen "$addr" --data-dir "$data" --log-level warn --pprof-listen 127.0.0.1:18094 >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do
	curl -fs "http://$addr/healthz" >/dev/null && break
	sleep 0.1
done
run() { # name, kvbench flags...
	name=$1
	shift
	echo "== $name: kvbench $*"
	"$kvbench" -url "http://$addr" -quiet "$@" | tee "$out/$name.txt" | grep -E 'scenario|throughput|^latency|watchers|event latency|verify' || true
}
run each -db each -scenario watch -watchers 1000 -watch-each -rate 2000 -c 32 -d 20s
run prefix -db prefix -scenario watch -watchers 100 -rate 500 -c 16 -d 20s &
bg=$!
sleep 6
curl -fs "http://127.0.0.1:18094/debug/pprof/profile?seconds=10" -o "$out/prefix-cpu.pprof"
wait "$bg" || true
go tool pprof -top -nodecount=30 "$kvd" "$out/prefix-cpu.pprof" 2>/dev/null | tee "$out/prefix-cpu.txt" | head -40
run hot-alone -db hot1 -scenario incr-hot -c 64 -d 10s -verify
run hot-watched -db hot2 -scenario incr-hot -c 64 -d 10s -verify -watchers 1
