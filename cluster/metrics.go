package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counts are what the node has done since it started, for /metrics.
type counts struct {
	claimed, restored, released atomic.Uint64
	setAside                    atomic.Uint64 // copies replaced that may hold unshipped writes
	replicaMissing              atomic.Uint64 // take-overs refused: the replica store lacked what was shipped
	replicating                 atomic.Bool   // the sidecar answered the last reconcile and registered every database
}

// Collector exports the node's part in the cluster to Prometheus.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Node }

var (
	ownedDesc       = prometheus.NewDesc("kvd_cluster_databases_owned", "Databases this node owns now.", nil, nil)
	leaseDesc       = prometheus.NewDesc("kvd_cluster_lease_valid", "1 while this node's etcd lease is surely alive (it may commit), else 0.", nil, nil)
	replicatingDesc = prometheus.NewDesc("kvd_cluster_replicating", "1 while the Litestream sidecar answers and replicates every database this node owns, else 0.", nil, nil)
	claimedDesc     = prometheus.NewDesc("kvd_cluster_claims_total", "Databases this node took ownership of.", nil, nil)
	restoredDesc    = prometheus.NewDesc("kvd_cluster_restores_total", "Of those, the ones restored from the replica (a peer had written them).", nil, nil)
	releasedDesc    = prometheus.NewDesc("kvd_cluster_releases_total", "Databases this node handed over to a peer.", nil, nil)
	setAsideDesc    = prometheus.NewDesc("kvd_cluster_unshipped_copies_set_aside_total", "Copies of this node's replaced after a peer took their database over while the node was gone: each may hold acknowledged writes never shipped (kept in .kvd-cluster/unshipped/).", nil, nil)
	missingDesc     = prometheus.NewDesc("kvd_cluster_replica_missing_total", "Take-overs refused because the replica store held no copy of a database that etcd says was shipped to it (a volume not mounted, a wrong --cluster-replica).", nil, nil)
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ownedDesc, leaseDesc, replicatingDesc, claimedDesc, restoredDesc, releasedDesc, setAsideDesc, missingDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	n.mu.Lock()
	owned := len(n.held)
	n.mu.Unlock()
	_, valid := n.validLease()
	ch <- prometheus.MustNewConstMetric(ownedDesc, prometheus.GaugeValue, float64(owned))
	ch <- prometheus.MustNewConstMetric(leaseDesc, prometheus.GaugeValue, boolValue(valid))
	ch <- prometheus.MustNewConstMetric(replicatingDesc, prometheus.GaugeValue, boolValue(n.counts.replicating.Load()))
	ch <- prometheus.MustNewConstMetric(claimedDesc, prometheus.CounterValue, float64(n.counts.claimed.Load()))
	ch <- prometheus.MustNewConstMetric(restoredDesc, prometheus.CounterValue, float64(n.counts.restored.Load()))
	ch <- prometheus.MustNewConstMetric(releasedDesc, prometheus.CounterValue, float64(n.counts.released.Load()))
	ch <- prometheus.MustNewConstMetric(setAsideDesc, prometheus.CounterValue, float64(n.counts.setAside.Load()))
	ch <- prometheus.MustNewConstMetric(missingDesc, prometheus.CounterValue, float64(n.counts.replicaMissing.Load()))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
