package actors

import (
	"errors"
	"io"
	"log/slog"
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
	SweepInterval time.Duration // TTL/history sweep per database; 0 disables it
	Logger        *slog.Logger
	Hooks         Hooks
}

// Hooks observe the actors for metrics; nil funcs are skipped.
type Hooks struct {
	Committed func(writes int, took time.Duration)
	Swept     func(sqlitekv.SweepResult)
}

func (h Hooks) committed(n int, took time.Duration) {
	if h.Committed != nil {
		h.Committed(n, took)
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
type Registry struct {
	cfg    Config
	system *actor.ActorSystem

	mu     sync.Mutex
	dbs    map[string]*DB
	closed bool

	// byName caches the client's spelling of an open database, so the hot
	// path skips resolving (and stat-ing) the path on every request. The
	// database keeps the file it opened, so a later rename cannot redirect it.
	byName sync.Map // string → *DB
}

func NewRegistry(cfg Config) *Registry {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// protoactor logs dead letters and lifecycle chatter at info; kvd's
	// own log says what matters, so the library's logger is silenced.
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	return &Registry{cfg: cfg, system: actor.NewActorSystem(quiet), dbs: map[string]*DB{}}
}

// Open returns the database named by the client's db parameter. A missing
// file is created only when create is set.
func (r *Registry) Open(name string, create bool) (*DB, error) {
	if db, ok := r.byName.Load(name); ok {
		return db.(*DB), nil
	}
	loc, err := r.cfg.Resolver.Resolve(name)
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case sqlitekv.PathDir:
		return nil, sqlitekv.Errorf(sqlitekv.CodePathIsDirectory, "Expected a .db file but got a directory")
	case sqlitekv.PathMissing:
		if !create {
			return nil, sqlitekv.Errorf(sqlitekv.CodeDatabaseNotFound, "Database file does not exist")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Server is shutting down")
	}
	if db, ok := r.dbs[loc.Path]; ok {
		r.byName.Store(name, db)
		return db, nil
	}
	store, err := sqlitekv.Open(loc.Path, create, r.cfg.Store)
	if err != nil {
		return nil, err
	}
	db := &DB{reg: r, path: loc.Path, store: store, stopped: make(chan struct{})}
	props := actor.PropsFromProducer(func() actor.Actor {
		return &dbActor{db: db, w: store.Writer(), log: r.cfg.Logger}
	})
	db.pid = r.system.Root.Spawn(props)
	r.dbs[loc.Path] = db
	r.byName.Store(name, db)
	return db, nil
}

// Close stops every actor after its queued writes commit, then closes the
// databases. Later Opens fail.
func (r *Registry) Close() error {
	r.mu.Lock()
	r.closed = true
	dbs := r.dbs
	r.dbs = map[string]*DB{}
	r.byName.Clear()
	r.mu.Unlock()
	var errs []error
	for _, db := range dbs {
		errs = append(errs, db.close())
	}
	r.system.Shutdown()
	return errors.Join(errs...)
}

// startTicker calls fn every SweepInterval until the returned stop is called.
func (r *Registry) startTicker(fn func()) (stop func()) {
	if r.cfg.SweepInterval <= 0 {
		return func() {}
	}
	t := time.NewTicker(r.cfg.SweepInterval)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				fn()
			case <-done:
				return
			}
		}
	}()
	return func() { t.Stop(); close(done) }
}
