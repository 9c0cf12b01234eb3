package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/kvd/kvd/cluster"
	"github.com/kvd/kvd/httpapi"
)

// clusterFlags make kvd one node of a cluster (README, "Beyond one
// machine"); without --cluster-node it serves alone.
type clusterFlags struct {
	node, etcd, advertise, replica string
	leaseTTL                       time.Duration
	litestream, socket             string
	tokenFile                      string
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.node, "cluster-node", "", "run as this node of a cluster (a name stable for the data dir); empty: serve alone")
	fs.StringVar(&c.etcd, "cluster-etcd", "http://127.0.0.1:2379", "etcd client URLs holding the cluster's leases and owners, comma-separated")
	fs.StringVar(&c.advertise, "cluster-advertise", "", "base URL at which peers reach this node (default: http://<--listen>)")
	fs.StringVar(&c.replica, "cluster-replica", "", "Litestream replica root every node streams to and restores from: file:///path or s3://bucket/prefix")
	fs.DurationVar(&c.leaseTTL, "cluster-lease-ttl", 10*time.Second, "how long a silent node keeps its databases before peers take them over")
	fs.StringVar(&c.litestream, "litestream", "litestream", "the litestream command, for restores")
	fs.StringVar(&c.socket, "litestream-socket", "/var/run/litestream.sock", "the control socket of this node's Litestream sidecar")
	fs.StringVar(&c.tokenFile, "cluster-token-file", "", "file whose first token this node presents to peers (one of their --auth-token-file tokens)")
}

func (c clusterFlags) check(all config) error {
	if c.node == "" {
		return nil
	}
	switch {
	case c.replica == "":
		return fmt.Errorf("--cluster-node needs --cluster-replica")
	case len(all.allowDirs) > 0 || all.allowAnyAbsolute:
		return fmt.Errorf("in cluster mode databases live in the data dir only: drop --allow-dir and --allow-any-absolute-db-path")
	case all.authTokenFile != "" && c.tokenFile == "":
		return fmt.Errorf("with --auth-token-file, peers need --cluster-token-file to hand databases over")
	}
	if err := cluster.CheckReplica(c.replica); err != nil {
		return fmt.Errorf("--cluster-replica: %w", err)
	}
	switch {
	case strings.TrimSpace(c.node) != c.node:
		// The name is kept in the data dir, trimmed: it would never match again.
		return fmt.Errorf("--cluster-node %q: a name without surrounding spaces", c.node)
	case c.leaseTTL < 2*time.Second:
		return fmt.Errorf("--cluster-lease-ttl %v: at least 2s", c.leaseTTL)
	case c.advertise != "" && !isBaseURL(c.advertise):
		return fmt.Errorf("--cluster-advertise %q: want a base URL at which peers reach this node, http(s)://host:port", c.advertise)
	}
	return nil
}

// isBaseURL tells whether raw is an http(s) URL with a host, to which a
// path can be appended.
func isBaseURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.RawQuery == "" && !strings.Contains(raw, "#")
}

// start joins the cluster, or returns nil when kvd serves alone.
func (c clusterFlags) start(ctx context.Context, listen, dataDir string, log *slog.Logger, closeDB func(string)) (*cluster.Node, error) {
	if c.node == "" {
		return nil, nil
	}
	token := ""
	if c.tokenFile != "" {
		tokens, err := httpapi.ReadTokenFile(c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("cluster token: %w", err)
		}
		if len(tokens) > 0 {
			token = tokens[0]
		}
	}
	advertise := c.advertise
	if advertise == "" {
		advertise = "http://" + listen
	}
	return cluster.Start(ctx, cluster.Config{
		Node: c.node, Advertise: strings.TrimRight(advertise, "/"), Etcd: strings.Split(c.etcd, ","),
		Replica: c.replica, LeaseTTL: c.leaseTTL, Litestream: c.litestream, Socket: c.socket,
		DataDir: dataDir, Token: token, Logger: log,
	}, closeDB)
}
