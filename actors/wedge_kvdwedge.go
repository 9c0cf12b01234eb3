//go:build kvdwedge

package actors

// Wedge blocks the database's actor for good: a test build's way to show
// that the systemd watchdog stops being pinged when an actor hangs.
func (d *DB) Wedge() { tell(d, wedgeOp{}) }

type wedgeOp struct{}

func (wedgeOp) apply(*dbActor) (none, error) { select {} }
func (wedgeOp) touches() (string, []string)  { return anyTable, nil }
