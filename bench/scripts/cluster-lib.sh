# Sourced by router.sh and cluster.sh: start a kvd cluster on loopback in
# a temporary folder, torn down when the script exits. Ports: etcd
# 22379-22380, HAProxy 28080, node i on 2808i (i = 1..3). The router runs
# deploy/cluster/local/haproxy.cfg, moved to these ports; a node not
# started is simply down.
# Needs kvd at $KVD (default /tmp/kvd); etcd, haproxy, litestream on PATH.
kvd=${KVD:-/tmp/kvd}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

start_etcd() {
	etcd --data-dir "$dir/etcd" --listen-client-urls http://127.0.0.1:22379 --advertise-client-urls http://127.0.0.1:22379 \
		--listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 \
		--initial-cluster default=http://127.0.0.1:22380 >"$dir/etcd.log" 2>&1 &
	pids+=($!)
	sleep 1
}

# start_node I: node nI with its Litestream sidecar, --sync full.
start_node() {
	local i=$1
	printf 'socket:\n  enabled: true\n  path: %s\ndbs: []\n' "$dir/ls$i.sock" >"$dir/ls$i.yml"
	litestream replicate -config "$dir/ls$i.yml" >"$dir/ls$i.log" 2>&1 &
	pids+=($!)
	sleep 0.5
	"$kvd" --listen "127.0.0.1:2808$i" --data-dir "$dir/n$i" --sync full --log-level warn --cluster-node "n$i" \
		--cluster-etcd http://127.0.0.1:22379 --cluster-replica "file://$dir/replica" \
		--litestream "$(command -v litestream)" --litestream-socket "$dir/ls$i.sock" >"$dir/kvd$i.log" 2>&1 &
	pids+=($!)
}

start_haproxy() {
	grep -vE '^\s*(chroot|user|group|daemon|log) ' "$repo/deploy/cluster/local/haproxy.cfg" |
		sed -e "s|/run/haproxy/admin.sock|$dir/admin.sock|; s|/etc/haproxy/kvd-placement.map|$dir/map|" \
			-e 's|127.0.0.1:808\([0-3]\)|127.0.0.1:2808\1|' >"$dir/haproxy.cfg"
	: >"$dir/map"
	haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
	haproxy_pid=$!
	pids+=($haproxy_pid)
	sleep 2 # two health checks
}
