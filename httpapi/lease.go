package httpapi

import (
	"net/http"

	"github.com/kvd/kvd/actors"
)

// dbRef is the database a request reaches and how it may be opened. It is
// parsed with the rest of the request (readDB, writeDB), so parsing never
// touches a database; withDB is the one place that opens it.
type dbRef struct {
	name    string // the db parameter (db/create's path)
	create  bool   // a missing file may be made (create_db_if_missing)
	dirMode bool   // a folder is a directory-mode table: only when table is given
	write   bool   // the call is a write: it waits for the database's actor
}

// withDB leases ref's database for fn: the way a handler reaches a
// database, for reads and writes alike. The lease ends when fn returns, so
// fn holds only the call; the answer is built after. A write holds its
// connection's reads meanwhile (holdReads): its body is read, and once
// sent it is applied whether the client stays or not.
func (s *Server) withDB(r *http.Request, ref dbRef, fn func(*actors.DB) error) error {
	db, err := s.leaseDB(r, ref)
	if err != nil {
		return err
	}
	if c := connOf(r); ref.write && c != nil {
		c.holdReads() // until the handler is done (handlerDone)
	}
	defer db.Release()
	return fn(db)
}

// leaseDB leases ref's database until Release: for a watch, whose lease
// outlives its handler (watch.go); every other handler uses withDB. A
// client that goes while its database is being opened for another stops
// waiting.
func (s *Server) leaseDB(r *http.Request, ref dbRef) (*actors.DB, error) {
	return s.cfg.Registry.Open(r.Context(), ref.name, ref.create, ref.dirMode)
}
