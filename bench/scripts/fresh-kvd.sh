# Sourced by the scripts that measure one kvd at a time: a fresh kvd on
# 127.0.0.1:18080 and kvbench against it. Needs kvbench at $KVBENCH
# (default /tmp/kvbench).
kvbench=${KVBENCH:-/tmp/kvbench}
addr=127.0.0.1:18080

# with_fresh_kvd KVD COMMAND... starts KVD (--sync $SYNC, default full;
# $KVD_FLAGS added) on an empty data directory, runs COMMAND with kvd_pid
# set to KVD's process and data to the directory, then stops KVD and
# removes the directory.
with_fresh_kvd() {
	local kvd=$1 data
	shift
	data=$(mktemp -d)
	# shellcheck disable=SC2086 # the flags are words
	"$kvd" --listen "$addr" --data-dir "$data" --sync "${SYNC:-full}" --log-level warn ${KVD_FLAGS:-} >/dev/null 2>&1 &
	kvd_pid=$!
	sleep 0.5
	# A kvd that could not listen (another one holds the port) has exited:
	# going on would measure that other one.
	if ! kill -0 "$kvd_pid" 2>/dev/null; then
		echo "fresh-kvd.sh: $kvd did not start (is $addr taken?)" >&2
		exit 1
	fi
	"$@"
	kill "$kvd_pid"
	wait "$kvd_pid" || true
	rm -rf "$data"
}

# measure SCENARIO DURATION prints its throughput at 64 connections on a
# fresh database: requests/s, or items/s for batch-set. $KVBENCH_FLAGS
# adds flags (-value-size 16384).
measure() {
	# shellcheck disable=SC2086 # the flags are words
	"$kvbench" -url "http://$addr" -d "$2" -c 64 -quiet -fresh -json -scenario "$1" ${KVBENCH_FLAGS:-} |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("items_per_s") or d["throughput_rps"])'
}
