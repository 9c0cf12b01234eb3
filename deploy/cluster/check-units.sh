#!/usr/bin/env bash
# Checks deploy/cluster's systemd units and Litestream configs, both setups
# (local/ and hosts/):
#   - systemd-analyze verify accepts kvd-node@n1 and kvd-litestream@n1, with
#     ExecStart pointed at a fresh kvd build and a litestream binary, and
#     has nothing to say about them (it exits 0 on warnings, so any output
#     fails the check);
#   - systemd-analyze security rates each at most 1.4 (--threshold=14), the
#     bound CI holds deploy/kvd.service to, and prints the score;
#   - every litestream-n*.yml starts Litestream with no database and its
#     control socket open (the socket moved into a temp dir).
# litestream: $LITESTREAM, else the one on PATH (go install
# github.com/benbjohnson/litestream/cmd/litestream@v0.5.18). Exits non-zero
# on the first failure; kills what it started, removes its temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

litestream=${LITESTREAM:-$(command -v litestream || true)}
[ -x "$litestream" ] || fail "no litestream binary: set LITESTREAM or install it"
go build -o "$work/kvd" ./cmd/kvd

for setup in local hosts; do
	dir="$work/$setup"
	mkdir "$dir"
	for unit in kvd-node@.service kvd-litestream@.service; do
		sed -e "s|/usr/local/bin/kvd|$work/kvd|" -e "s|/usr/local/bin/litestream|$litestream|" \
			"deploy/cluster/$setup/$unit" >"$dir/$unit"
		ln -s "$unit" "$dir/${unit/@/@n1}"
	done
	said=$(systemd-analyze verify "$dir/kvd-node@n1.service" "$dir/kvd-litestream@n1.service" 2>&1) ||
		fail "systemd-analyze verify rejects $setup's units: $said"
	[ -z "$said" ] || fail "systemd-analyze verify on $setup's units: $said"
	ok "systemd-analyze verify $setup/kvd-node@.service $setup/kvd-litestream@.service"
	for unit in kvd-node@n1.service kvd-litestream@n1.service; do
		score=$(systemd-analyze security --offline=true "$dir/$unit" | tail -1)
		systemd-analyze security --offline=true --threshold=14 "$dir/$unit" >/dev/null ||
			fail "$setup/$unit exposes more than 1.4: $score"
		ok "$setup: ${score#→ }"
	done

	for config in deploy/cluster/"$setup"/litestream-n*.yml; do
		sock="$work/ls.sock"
		sed "s|path: /run/kvd-n[0-9]*/litestream.sock|path: $sock|" "$config" >"$work/ls.yml"
		grep -q "path: $sock" "$work/ls.yml" || fail "$config: no socket path found"
		"$litestream" replicate -config "$work/ls.yml" >"$work/ls.log" 2>&1 &
		pid=$!
		pids+=("$pid")
		for _ in $(seq 100); do
			[ -S "$sock" ] && break
			kill -0 "$pid" 2>/dev/null || fail "$config: litestream exited: $(cat "$work/ls.log")"
			sleep 0.1
		done
		listed=$(curl -fsS --unix-socket "$sock" http://litestream/list) ||
			fail "$config: no answer on the control socket: $(cat "$work/ls.log")"
		[ "$listed" = '{"databases":[]}' ] || fail "$config: litestream lists $listed, want no database"
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		rm -f "$sock"
		ok "$config: litestream starts with its control socket and no database"
	done
done
echo "PASS: check-units.sh"
