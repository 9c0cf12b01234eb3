package actors

import "time"

// upgrading logs a table's upgrade from an older kvd's format
// (sqlitekv.Options.Upgrading): the requests of its database wait for it,
// tens of seconds for a table of millions of versions, and without a line
// an operator saw only a silent stall.
func (r *Registry) upgrading(path, table string) func(error) {
	began := time.Now()
	r.cfg.Logger.Info("upgrading a table an older kvd wrote: its database's requests wait for it", "db", path, "table", table)
	return func(err error) {
		took := time.Since(began).Round(time.Millisecond)
		if err != nil {
			r.cfg.Logger.Warn("table not upgraded: left as the older kvd wrote it", "db", path, "table", table, "took", took, "err", err)
			return
		}
		r.cfg.Logger.Info("table upgraded", "db", path, "table", table, "took", took)
	}
}
