package actors

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/kvd/kvd/sqlitekv"
)

// Config tunes the registry.
type Config struct {
	Resolver      *sqlitekv.Resolver
	Store         sqlitekv.Options
	MaxQueue      int           // writes queued per database before OVERLOADED; 0 means 10000
	MaxOpen       int           // databases open at once, least recently used closed first; 0 means 1024
	MaxWatched    int           // databases watches keep open at once (watch.go); 0 means half of MaxOpen, at least 1
	IdleTimeout   time.Duration // close a database unused this long; 0 keeps it open
	SweepInterval time.Duration // TTL/history sweep per database; 0 disables it
	Now           func() time.Time
	Logger        *slog.Logger
	Hooks         Hooks
	// Owner, in a cluster, decides which databases this node serves
	// (cluster.Node); nil serves every database.
	Owner Owner
}

// Owner claims a database for this node before the registry opens it.
type Owner interface {
	// Holds tells, without waiting, whether this node serves path now.
	Holds(path string) bool
	// Acquire makes this node path's one server, with the newest copy of
	// it in place (or none, when it exists nowhere and create is set).
	Acquire(path string, create bool) error
}

// Hooks observe the actors for metrics; nil funcs are skipped.
type Hooks struct {
	Committed func(writes int, took time.Duration) // a group that committed
	Swept     func(sqlitekv.SweepResult)
	Rescanned func() // a directory-mode table's folder was rescanned
	// CheckpointFailed: a checkpoint failed (sqlitekv.Options.CheckpointFailed)
	CheckpointFailed func()
}

func (h Hooks) checkpointFailed() {
	if h.CheckpointFailed != nil {
		h.CheckpointFailed()
	}
}

func (h Hooks) committed(n int, took time.Duration) {
	if h.Committed != nil {
		h.Committed(n, took)
	}
}

func (h Hooks) rescanned() {
	if h.Rescanned != nil {
		h.Rescanned()
	}
}

func (h Hooks) swept(r sqlitekv.SweepResult) {
	if h.Swept != nil {
		h.Swept(r)
	}
}

// Registry maps each database's real path to its one owner, spawning the
// owner on first use. Because the key is the resolved path, every spelling
// of a database (app, ./app, /data/app.db) reaches the same actor.
//
// Open hands out a lease: the database is not closed for the open limit or
// for idleness while any lease is held, so no request sees its database
// vanish mid-way. Only CloseDB (a cluster's hand-over) and a file found
// replaced close one under its leases; their requests are told to retry.
type Registry struct {
	cfg    Config
	system *actor.ActorSystem
	stop   chan struct{}

	mu          sync.Mutex
	dbs         map[string]*DB           // by real path
	byName      map[string]*DB           // by the client's spelling, to skip resolving
	closing     map[string]chan struct{} // real paths being closed right now
	opening     map[string]*opening      // real paths being opened right now, outside mu (opening.go)
	watched     int                      // databases with a watcher (watch.go)
	room        chan struct{}            // closed when room may have freed for an open past MaxOpen (room.go); nil: nobody waits
	roomWaiters int                      // requests waiting for such room, between their looks too
	closed      bool
	faults      shmFaults      // the -shm faults that delay a database's reopen (shmfaults.go)
	failed      failedUpgrades // the failed upgrades that delay a database's reopen (failedupgrades.go)

	sweeps      sweepSchedule
	checkpoints checkpointWarnings
}

func NewRegistry(cfg Config) *Registry {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 10000
	}
	if cfg.MaxOpen <= 0 {
		cfg.MaxOpen = 1024
	}
	if cfg.MaxWatched <= 0 {
		cfg.MaxWatched = max(1, cfg.MaxOpen/2)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// protoactor logs dead letters and lifecycle chatter at info; kvd's
	// own log says what matters, so the library speaks only when kvd's log
	// is at debug.
	actorLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		actorLog = cfg.Logger.With("lib", "protoactor")
	}
	logs := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLog })
	r := &Registry{
		cfg: cfg, system: actor.NewActorSystem(logs), stop: make(chan struct{}),
		dbs: map[string]*DB{}, byName: map[string]*DB{}, closing: map[string]chan struct{}{},
		opening: map[string]*opening{}, faults: shmFaults{}, failed: failedUpgrades{},
	}
	r.cfg.Store.CheckpointFailed, r.cfg.Store.Upgrading = r.checkpointFailed, r.upgrading
	if cfg.IdleTimeout > 0 {
		go r.closeIdleEvery(max(cfg.IdleTimeout/4, 10*time.Millisecond))
	}
	return r
}

// DataDir is the data directory, as resolved at start.
func (r *Registry) DataDir() string { return r.cfg.Resolver.DataDir() }

// Open leases the database named by the client's db parameter; the caller
// must Release it. A missing file is created only when create is set. A
// directory is opened in directory mode when the client named a table
// (dirMode), and refused otherwise. Waiting for another request's open or
// close of the same database ends with ctx; the files are opened outside
// the registry's lock, so a slow open holds up no other database.
//
// An open that runs out of file descriptors (a burst past MaxOpen, the
// databases evicted for it still closing) is tried once more, after the
// least recently used idle database and every close under way have
// given theirs back.
func (r *Registry) Open(ctx context.Context, name string, create, dirMode bool) (*DB, error) {
	db, err := r.open(ctx, name, create, dirMode)
	if sqlitekv.NoFilesLeft(err) && r.makeRoom() {
		db, err = r.open(ctx, name, create, dirMode)
	}
	return db, err
}

// makeRoom closes the least recently used idle database and waits until
// it and every other database being closed are closed. It reports whether
// there was any.
func (r *Registry) makeRoom() bool {
	r.mu.Lock()
	r.evictLocked(r.leastRecentlyUsedLocked())
	pending := make([]chan struct{}, 0, len(r.closing))
	for _, done := range r.closing {
		pending = append(pending, done)
	}
	r.mu.Unlock()
	for _, done := range pending {
		<-done
	}
	return len(pending) > 0
}

func (r *Registry) open(ctx context.Context, name string, create, dirMode bool) (*DB, error) {
	r.mu.Lock()
	if db, ok := r.byName[name]; ok && (db.dir == nil || dirMode) && r.owns(db.path) {
		if !db.store.MustReopen() {
			db.lease(r.cfg.Now())
			r.mu.Unlock()
			return db, nil
		}
		r.evictLocked(db) // its file was deleted or replaced: resolve the path afresh
	}
	r.mu.Unlock()

	loc, err := r.cfg.Resolver.Resolve(name)
	if sqlitekv.CodeOf(err) == sqlitekv.CodeInvalidSQLiteHeader && loc.Path != "" {
		// An open of kvd's own may be creating the file: the SQLite
		// driver extends a new file to its first page (fallocate) before
		// it writes it, and a look in between finds zeros, not a header.
		// Out of file descriptors, creates fail and are undone over and
		// over, and a valid read got 400. Judge the file once any open
		// or close of it is over.
		r.mu.Lock()
		err = r.settleLocked(ctx, loc.Path)
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		loc, err = r.cfg.Resolver.Resolve(name)
	}
	if err != nil {
		return nil, err
	}
	if r.cfg.Owner != nil && loc.Kind != sqlitekv.PathDir {
		if err := r.cfg.Owner.Acquire(loc.Path, create); err != nil {
			return nil, err
		}
		if loc, err = r.cfg.Resolver.Resolve(name); err != nil { // restored, maybe
			return nil, err
		}
	}
	switch loc.Kind {
	case sqlitekv.PathDir:
		if r.cfg.Owner != nil {
			return nil, sqlitekv.Errorf(sqlitekv.CodeInvalidParameters, "Directory mode is not available in cluster mode: only database files are replicated")
		}
		if !dirMode {
			return nil, sqlitekv.Errorf(sqlitekv.CodePathIsDirectory, "Expected a .db file but got a directory (name a table for directory mode)")
		}
		return r.openPath(ctx, name, loc.Path, true, true)
	case sqlitekv.PathMissing:
		if !create {
			return nil, sqlitekv.Errorf(sqlitekv.CodeDatabaseNotFound, "Database file does not exist")
		}
	}
	return r.openPath(ctx, name, loc.Path, create, false)
}

// Resolve finds the file the client's db parameter names.
func (r *Registry) Resolve(name string) (sqlitekv.Location, error) {
	return r.cfg.Resolver.Resolve(name)
}

// owns tells whether this node serves path: always, outside a cluster.
func (r *Registry) owns(path string) bool {
	return r.cfg.Owner == nil || r.cfg.Owner.Holds(path)
}

// CloseDB closes the database at path, if open (or being opened), once
// its queued writes have committed, and returns when it is closed: a
// cluster node hands the file over after that.
func (r *Registry) CloseDB(path string) {
	r.mu.Lock()
	for o := r.opening[path]; o != nil; o = r.opening[path] {
		r.mu.Unlock()
		<-o.done
		r.mu.Lock()
	}
	if db, ok := r.dbs[path]; ok {
		r.evictLocked(db)
	}
	done := r.closing[path]
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// rememberName lets later requests skip resolving name. Only clean
// spellings are remembered: a/./b, a//b and the like are endless, and
// would grow the map without bound.
func (r *Registry) rememberName(name string, db *DB) {
	if filepath.Clean(name) == name {
		r.byName[name] = db
	}
}

// OpenCount is the number of databases open now.
func (r *Registry) OpenCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.dbs)
}

// leastRecentlyUsedLocked picks the idle database unused the longest; nil
// when every open database is leased (then the limit is briefly exceeded
// rather than failing a request).
func (r *Registry) leastRecentlyUsedLocked() *DB {
	var victim *DB
	for _, db := range r.dbs {
		if db.leases == 0 && (victim == nil || db.lastUsed.Before(victim.lastUsed)) {
			victim = db
		}
	}
	return victim
}

// evictDownToLocked evicts the least recently used idle databases until at
// most n are open or being opened, or none left is idle.
func (r *Registry) evictDownToLocked(n int) {
	for len(r.dbs)+len(r.opening) > n {
		victim := r.leastRecentlyUsedLocked()
		if victim == nil {
			return
		}
		r.evictLocked(victim)
	}
}

// evictLocked forgets db at once and closes it in the background; an Open
// of the same path waits for that close to finish.
func (r *Registry) evictLocked(db *DB) {
	if db == nil {
		return
	}
	delete(r.dbs, db.path)
	r.roomMayHaveFreedLocked()
	if db.store.ShmLost() {
		r.faults.note(db.path, time.Now()) // wall-clock: it paces memory, not data
	}
	for name, d := range r.byName {
		if d == db {
			delete(r.byName, name)
		}
	}
	done := make(chan struct{})
	r.closing[db.path] = done
	go func() {
		if err := db.close(); err != nil {
			r.cfg.Logger.Error("closing database", "db", db.path, "err", err)
		}
		r.mu.Lock()
		delete(r.closing, db.path)
		r.mu.Unlock()
		close(done)
	}()
}

// CloseIdle closes every database unleased for longer than IdleTimeout,
// and every unleased one whose file was deleted or replaced.
func (r *Registry) CloseIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	cutoff := r.cfg.Now().Add(-r.cfg.IdleTimeout)
	for _, db := range r.dbs {
		if db.leases == 0 && (db.lastUsed.Before(cutoff) || db.store.MustReopen()) {
			r.evictLocked(db)
		}
	}
}

func (r *Registry) closeIdleEvery(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.CloseIdle()
		case <-r.stop:
			return
		}
	}
}

// DBStats describes one open database for metrics.
type DBStats struct {
	Path   string
	Name   string // the path as the Resolver shows it: relative to its root, never absolute
	File   string // the SQLite file: Path itself, or directory mode's cache
	Queued int64
}

// Stats lists the open databases.
func (r *Registry) Stats() []DBStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	stats := make([]DBStats, 0, len(r.dbs))
	for _, db := range r.dbs {
		stats = append(stats, DBStats{Path: db.path, Name: r.cfg.Resolver.Name(db.path), File: db.store.File(), Queued: db.queued.Load()})
	}
	return stats
}
