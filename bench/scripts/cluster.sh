#!/bin/bash
# cluster.sh [KVBENCH FLAGS...]
#
# Runs kvbench through HAProxy against a 3-node kvd cluster on loopback
# (cluster-lib.sh), e.g. `cluster.sh -scenario incr-spread -dbs 200 -verify`:
# the same load a single kvd takes, spread over databases the router
# places on three nodes, each checked exactly afterwards.
# Needs kvbench at $KVBENCH (default /tmp/kvbench).
set -eu
kvbench=${KVBENCH:-/tmp/kvbench}
. "$(dirname "$0")/cluster-lib.sh"
start_etcd
for i in 1 2 3; do start_node "$i"; done
start_haproxy
"$kvbench" -url http://127.0.0.1:28080 "$@"
