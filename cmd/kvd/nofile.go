package main

import (
	"fmt"
	"log/slog"
	"syscall"

	"github.com/kvd/kvd/sqlitekv"
)

// kvd's file descriptors (RLIMIT_NOFILE; Go raises its soft limit to the
// hard one at start) go three ways: client connections, one each; open
// databases, sqlitekv.FilesPerDatabase each (14 with the 2 readers of
// GOMAXPROCS 2 or less); and spare room for the rest. Past the limit every
// open fails with EMFILE, so --max-open-dbs is fitted to what connections
// leave. Under a limit of 1024 with 2 readers: 512 connections, 64 spare,
// and (1024 - 512 - 64) / 14 = 32 databases.

// spareFiles is room for everything else: the runtime's own (about ten),
// the listener, the profiler, logs, the token file, a backup's copy, a
// database's header read before it opens, directory mode's temp files.
// Under a limit of 256, a quarter of it.
const spareFiles = 64

// fileBudget is how kvd spends its file descriptors.
type fileBudget struct {
	limit       int // RLIMIT_NOFILE
	connections int // client connections kept open
	databases   int // databases open at once
	readers     int // read connections per database; 0 leaves sqlitekv's default
	perDatabase int // files one open database holds
}

// fileLimit is RLIMIT_NOFILE.
func fileLimit() (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	return int(min(lim.Cur, 1<<30)), nil
}

// fitFiles divides limit. Connections get maxConns, or when that is 0
// what maxOpenDBs databases and the spare room leave, yet at least half
// of limit, so a low limit still leaves connections. Databases get what
// the connections and the spare room leave, at most maxOpenDBs. When that
// is not one database with its readers (a low limit on many cores), each
// database gets fewer readers, at least one; when not even that fits, kvd
// cannot serve.
func fitFiles(limit, maxConns, maxOpenDBs int, store sqlitekv.Options) (fileBudget, error) {
	spare := min(spareFiles, limit/4)
	b := fileBudget{limit: limit, connections: maxConns, perDatabase: sqlitekv.FilesPerDatabase(store)}
	if b.connections == 0 {
		b.connections = limit - min(limit/2, b.perDatabase*maxOpenDBs+spare)
	}
	room := limit - b.connections - spare
	if room < b.perDatabase {
		// 3 × (2 + readers) + 2 ≤ room (sqlitekv.FilesPerDatabase)
		store.Readers = max(1, (room-2)/3-2)
		b.readers, b.perDatabase = store.Readers, sqlitekv.FilesPerDatabase(store)
	}
	if room < b.perDatabase {
		return b, fmt.Errorf("RLIMIT_NOFILE %d leaves no room for a database (%d files) beside %d connections and %d spare: raise the limit (ulimit -n, LimitNOFILE=) or lower --max-connections", limit, b.perDatabase, b.connections, spare)
	}
	b.databases = min(maxOpenDBs, room/b.perDatabase)
	return b, nil
}

// budgetFiles fits kvd into its file limit, and warns when that takes
// fewer open databases or readers than asked for.
func budgetFiles(cfg config, log *slog.Logger) (fileBudget, error) {
	limit, err := fileLimit()
	if err != nil {
		return fileBudget{}, err
	}
	b, err := fitFiles(limit, cfg.maxConnections, cfg.maxOpenDBs, sqlitekv.Options{})
	if err != nil {
		return b, err
	}
	if b.databases < cfg.maxOpenDBs || b.readers > 0 {
		attrs := []any{"limit", b.limit, "max_open_dbs", b.databases, "asked", cfg.maxOpenDBs, "files_per_db", b.perDatabase, "max_connections", b.connections}
		if b.readers > 0 {
			attrs = append(attrs, "readers_per_db", b.readers)
		}
		log.Warn("RLIMIT_NOFILE is too low for --max-open-dbs: fewer databases stay open at once (raise the limit, or lower --max-connections)", attrs...)
	}
	return b, nil
}
