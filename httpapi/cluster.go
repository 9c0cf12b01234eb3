package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/kvd/kvd/sqlitekv"
)

// Cluster is this node's part in a cluster of kvd nodes (cluster.Node);
// nil when kvd serves alone.
type Cluster interface {
	// Ready is nil while the node may serve: /readyz answers 503 with
	// its error otherwise, and the router sends the node nothing.
	Ready() error
	// Release hands the database at path over to the peer asking.
	Release(ctx context.Context, path string) error
}

// releaseTimeout bounds a hand-over: the queued writes' commit and a sync
// to the replica.
const releaseTimeout = 30 * time.Second

// handleReleaseDB is how a peer that the router now sends a database to
// takes it from this node: 200 once this node no longer serves it and
// the replica holds every write it acknowledged.
func (s *Server) handleReleaseDB(w http.ResponseWriter, r *http.Request, t target) {
	if s.cfg.Cluster == nil {
		s.writeError(w, r, sqlitekv.Errorf(sqlitekv.CodeInvalidParameters, "This kvd runs alone, not in a cluster: it has no database to hand over"))
		return
	}
	loc, err := s.cfg.Registry.Resolve(t.q.Get("db"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The hand-over finishes even if the asking peer gives up waiting:
	// half of one would leave the database served by nobody until the
	// next request claims it back.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), releaseTimeout)
	defer cancel()
	if err := s.cfg.Cluster.Release(ctx, loc.Path); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "released"})
}
