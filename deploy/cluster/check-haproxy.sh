#!/usr/bin/env bash
# Checks deploy/cluster/local/haproxy.cfg for real: `haproxy -c`, then runs
# it on loopback (on free ports, with its map and stats socket in a temp
# dir) in front of three tiny Python backends that answer /readyz 200 and
# say which node they are, and checks that:
#   - `app`, `./app`, `app.db` and `.%2Fapp.db` land on one node;
#   - POST /db/create is routed by its `path` parameter (other routes'
#     `path` is a JSON path and is ignored);
#   - names spread over all three nodes (the hash works at all);
#   - a placement map entry, from the map file or added at runtime through
#     the stats socket, overrides the hash, and removing it restores it;
#   - a node that stops answering /readyz leaves the pool: its hashed and
#     its placed databases go to the other nodes;
#   - adding a fourth node to kvd_hash (README.md, "Adding a node") moves
#     about a quarter of 300 names, every one of them to the new node.
# Exits non-zero on the first failure; kills what it started and removes
# its temp dir in any case. Needs haproxy (2.6), python3 and curl.
set -euo pipefail
cd "$(dirname "$0")"

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

# Six free loopback ports: the frontend, the three nodes, and a fourth
# node with a second frontend for the adding-a-node check.
read -r fe p1 p2 p3 p4 fe4 < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
PY
)

# A stand-in for kvd: answers /readyz 200 (503 once $work/<name>.down
# exists) and every other request with its node name.
cat >"$work/node.py" <<'PY'
import http.server, os, sys
name, port, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        if self.path.startswith("/readyz") and os.path.exists(os.path.join(work, name + ".down")):
            code, body = 503, b"draining\n"
        else:
            code, body = 200, name.encode() + b"\n"
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = answer
    def log_message(self, *args):
        pass
class S(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # HAProxy ends its checks with a reset: not an error here
S(("127.0.0.1", port), H).serve_forever()
PY
for n in 1 2 3 4; do
	port_var="p$n"
	python3 "$work/node.py" "n$n" "${!port_var}" "$work" &
	pids+=($!)
done
# HAProxy counts a server UP until its checks fail: start it once every
# stand-in answers, or the first requests race the stand-ins' start.
for n in 1 2 3 4; do
	port_var="p$n"
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:${!port_var}/readyz" 2>/dev/null && break
		sleep 0.1
	done
	curl -fsS -o /dev/null "http://127.0.0.1:${!port_var}/readyz" || fail "stand-in n$n does not answer"
done

# The config under test, moved to the free ports and the temp dir, in the
# foreground and as the current user (no chroot, user, daemon, syslog).
sock="$work/admin.sock"
map="$work/kvd-placement.map"
cp local/kvd-placement.map "$map"
# Placements read from the file at start: each to a different node, so at
# least two of them differ from what the hash would pick.
printf 'pin1 kvd_n1\npin2 kvd_n2\npin3 kvd_n3\n' >>"$map"
sed -e "s|127.0.0.1:8080|127.0.0.1:$fe|; s|127.0.0.1:8081|127.0.0.1:$p1|g; s|127.0.0.1:8082|127.0.0.1:$p2|g; s|127.0.0.1:8083|127.0.0.1:$p3|g" \
	-e "s|/etc/haproxy/kvd-placement.map|$map|g; s|/run/haproxy/admin.sock|$sock|" \
	-e '/^\s*\(chroot\|user\|group\|daemon\|log \/dev\/log\)\b/d' \
	local/haproxy.cfg >"$work/haproxy.cfg"
haproxy -c -q -f "$work/haproxy.cfg" || fail "haproxy -c rejects the config"
ok "haproxy -c accepts local/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)

# admin CMD [SOCKET]: one command on the stats socket (python: socat may
# be absent).
admin() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
print(s.makefile().read(), end="")' "${2:-$sock}" "$1"
}
# node METHOD QUERY-PATH: the node that answers it through HAProxy.
node() { curl -fsS -X "$1" "http://127.0.0.1:$fe$2"; }
get() { node GET "/api/v1/sqlite/kv/k?db=$1"; }
# status NODE [SOCKET]: HAProxy's state of NODE in kvd_hash (UP, DOWN,
# UP 1/2, ...).
status() { admin "show stat" "${2:-}" | awk -F, -v n="$1" '$1 == "kvd_hash" && $2 == n { print $18 }'; }
# wait_status NODE STATE [SOCKET]: until HAProxy has NODE in STATE (10 s
# at most).
wait_status() {
	for _ in $(seq 100); do
		[ "$(status "$1" "${3:-}")" = "$2" ] && return 0
		sleep 0.1
	done
	fail "HAProxy has $1 $(status "$1"), want $2"$'\n'"$(cat "$work/haproxy.log")"
}
for n in n1 n2 n3; do wait_status $n UP; done
ok "all three nodes UP by /readyz"

# 1. One database, four spellings, one node.
want=$(get app)
for spelling in ./app app.db ./app.db .%2Fapp.db; do
	got=$(get "$spelling")
	[ "$got" = "$want" ] || fail "db=$spelling went to $got, db=app to $want"
done
ok "db=app, ./app, app.db, ./app.db, .%2Fapp.db all on $want"
for i in $(seq 1 10); do # a + in a query is a space, to kvd as to HAProxy
	plus=$(get "sp+ace$i") spaced=$(get "sp%20ace$i")
	[ "$plus" = "$spaced" ] || fail "db=sp+ace$i went to $plus, db=sp%20ace$i to $spaced"
done
ok "db=sp+aceN and db=sp%20aceN on one node each, 10 names"

# 2. db/create is routed by path; a JSON path elsewhere is not.
got=$(node POST "/api/v1/sqlite/db/create?path=./app.db")
[ "$got" = "$want" ] || fail "db/create?path=./app.db went to $got, db=app to $want"
ok "POST db/create?path=./app.db on $want"
spread=""
for i in $(seq 1 30); do spread+="$(get "db$i") "; done
for i in $(seq 1 30); do
	got=$(node GET "/api/v1/sqlite/kv/k?db=app&path=db$i")
	[ "$got" = "$want" ] || fail "db=app&path=db$i went to $got, not $want: path used on a kv route"
done
ok "kv GET ?db=app&path=... routed by db, 30 paths"

# 3. The ring spreads names over every node.
for n in n1 n2 n3; do
	c=$(tr ' ' '\n' <<<"$spread" | grep -c "^$n\$" || true)
	[ "$c" -gt 0 ] || fail "no database of db1..db30 on $n: $spread"
	echo "   db1..db30 on $n: $c"
done
ok "db1..db30 spread over n1, n2, n3"

# 4. Placements: the map file's, then one added and removed at runtime.
for n in 1 2 3; do
	got=$(get "pin$n")
	[ "$got" = "n$n" ] || fail "pin$n placed on kvd_n$n by the map file went to $got"
done
ok "map file: pin1, pin2, pin3 on n1, n2, n3"
other=n1
[ "$want" = n1 ] && other=n2
admin "add map $map app kvd_$other" >/dev/null
for spelling in app ./app.db; do
	got=$(get "$spelling")
	[ "$got" = "$other" ] || fail "after add map app kvd_$other, db=$spelling went to $got"
done
got=$(node POST "/api/v1/sqlite/db/create?path=app")
[ "$got" = "$other" ] || fail "after add map, db/create?path=app went to $got"
ok "add map app kvd_$other: app moves from $want to $other"
admin "set map $map app kvd_$want" >/dev/null
got=$(get app)
[ "$got" = "$want" ] || fail "after set map app kvd_$want, db=app went to $got"
ok "set map app kvd_$want: app back on $want"
admin "del map $map app" >/dev/null
got=$(get app)
[ "$got" = "$want" ] || fail "after del map, db=app went to $got, the hash says $want"
ok "del map app: app hashed to $want again"

# 5. A node whose /readyz fails leaves the pool: its databases, hashed
# and placed, go elsewhere; back once it is ready again.
touch "$work/$want.down"
wait_status "$want" DOWN
got=$(get app)
[ "$got" != "$want" ] || fail "db=app still on $want after its /readyz failed"
pinned=$(get "pin${want#n}")
[ "$pinned" != "$want" ] || fail "pin${want#n} still on $want after its /readyz failed"
ok "$want not ready: app on $got, pin${want#n} on its backup $pinned"
rm "$work/$want.down"
wait_status "$want" UP
got=$(get app)
[ "$got" = "$want" ] || fail "db=app on $got after $want came back, want $want"
ok "$want ready again: app back on $want"

# 6. Adding a node: a second HAProxy with n4 added to kvd_hash as the
# README says (next id). Consistent hashing moves only the names that now
# hash to n4, about 1/4 of them.
sed -e "s|127.0.0.1:$fe|127.0.0.1:$fe4|" -e "s|$sock|$work/admin4.sock|" \
	-e "/^\tserver n3 127.0.0.1:$p3 id 3\$/a\\\tserver n4 127.0.0.1:$p4 id 4" \
	"$work/haproxy.cfg" >"$work/haproxy4.cfg"
grep -q "server n4 127.0.0.1:$p4 id 4" "$work/haproxy4.cfg" || fail "could not add n4 to the config"
haproxy -c -q -f "$work/haproxy4.cfg" || fail "haproxy -c rejects the config with n4"
haproxy -db -f "$work/haproxy4.cfg" >"$work/haproxy4.log" 2>&1 &
pids+=($!)
for n in n1 n2 n3 n4; do wait_status $n UP "$work/admin4.sock"; done
urls3=() urls4=()
for i in $(seq 1 300); do
	urls3+=("http://127.0.0.1:$fe/api/v1/sqlite/kv/k?db=t$i")
	urls4+=("http://127.0.0.1:$fe4/api/v1/sqlite/kv/k?db=t$i")
done
mapfile -t before < <(curl -fsS "${urls3[@]}")
mapfile -t after < <(curl -fsS "${urls4[@]}")
[ "${#before[@]}" = 300 ] && [ "${#after[@]}" = 300 ] || fail "got ${#before[@]} and ${#after[@]} answers for 300 names"
moved=0
for i in $(seq 0 299); do
	[ "${before[$i]}" = "${after[$i]}" ] && continue
	[ "${after[$i]}" = n4 ] || fail "t$((i + 1)) moved from ${before[$i]} to ${after[$i]}, not to the new node"
	moved=$((moved + 1))
done
for n in n1 n2 n3; do
	echo "   t1..t300 on $n: $(printf '%s\n' "${before[@]}" | grep -c "^$n\$" || true) of 300 before n4"
done
[ "$moved" -ge 45 ] && [ "$moved" -le 105 ] || fail "adding n4 moved $moved of 300 names, want about 75"
ok "adding n4 moves $moved of 300 names, all to n4; the rest stay"
echo "PASS: check-haproxy.sh"
