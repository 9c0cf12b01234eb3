package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/kvd/kvd/actors"
	"github.com/kvd/kvd/internal/unixtime"
	"github.com/kvd/kvd/sqlitekv"
)

func (s *Server) handleRollbackKey(w http.ResponseWriter, r *http.Request, t target) {
	req, ref, err := parseRollbackKey(t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var restored *sqlitekv.Entry
	err = s.withDB(r, ref, func(db *actors.DB) (err error) {
		restored, err = db.RollbackKey(r.Context(), req)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newValueResponse(t.key, restored))
}

func parseRollbackKey(t target) (req sqlitekv.RollbackKeyRequest, ref dbRef, err error) {
	req.Key, req.Versions = t.key, t.versions
	if req.Table, err = t.q.table(); err != nil {
		return req, ref, err
	}
	if req.Steps, err = t.q.intIn("steps", 1, 1, 1<<20); err != nil {
		return req, ref, err
	}
	if req.NoHistory, err = t.q.noHistory(); err != nil {
		return req, ref, err
	}
	ref, err = t.q.writeDB()
	return req, ref, err
}

type rollbackAction struct {
	Key    string `json:"key"`
	Action string `json:"action"`
}

type rollbackTableResponse struct {
	Success     bool             `json:"success"`
	DryRun      bool             `json:"dry_run"`
	ToTimestamp unixtime.Millis  `json:"to_timestamp"`
	Count       int              `json:"count"`
	Changes     []rollbackAction `json:"changes"`
	// Truncated: changes lists the first of count changes, as many as
	// --max-answer-bytes of keys allows.
	Truncated bool   `json:"changes_truncated,omitempty"`
	Message   string `json:"message,omitempty"`
}

type rollbackTableBody struct {
	Keys        keyList `json:"keys"`
	ExcludeKeys keyList `json:"exclude_keys"`
}

// keyList is a body's list of keys that tells "absent" from "empty" (or
// null): an empty keys list must not read as "every key".
type keyList struct {
	given bool
	keys  []string
}

func (l *keyList) UnmarshalJSON(b []byte) error {
	l.given = true
	return json.Unmarshal(b, &l.keys)
}

// check validates every key, naming the one at fault.
func (l keyList) check(field string) error {
	for i, k := range l.keys {
		if err := sqlitekv.ValidateKey(k); err != nil {
			return invalidParam("Invalid JSON body: %s[%d]: %s", field, i, messageOf(err))
		}
	}
	return nil
}

// selection turns the body into the keys to roll back. keys selects
// those; an empty (or null) list would select nothing, and a client that
// built it from an empty result surely did not mean "every key", so it is
// refused. exclude_keys excludes those: empty means "exclude nothing", the
// whole table, as no body does.
func (b rollbackTableBody) selection() (keys, exclude []string, err error) {
	switch {
	case b.Keys.given && b.ExcludeKeys.given:
		return nil, nil, invalidParam("Give keys or exclude_keys, not both")
	case b.Keys.given && len(b.Keys.keys) == 0:
		return nil, nil, invalidParam("Invalid JSON body: keys is empty: it selects no key (leave it out to roll back every key)")
	}
	if err := b.Keys.check("keys"); err != nil {
		return nil, nil, err
	}
	if err := b.ExcludeKeys.check("exclude_keys"); err != nil {
		return nil, nil, err
	}
	return b.Keys.keys, b.ExcludeKeys.keys, nil
}

func (s *Server) handleRollbackTable(w http.ResponseWriter, r *http.Request, t target) {
	req, ref, err := s.parseRollbackTable(r, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Listed = s.answerBudget(itemBytes)
	// A dry run writes nothing, a new database included: one that does
	// not exist has nothing to roll back.
	wouldCreate := ref.create && req.DryRun
	ref.create = ref.create && !req.DryRun
	var done sqlitekv.RollbackTableResult
	err = s.withDB(r, ref, func(db *actors.DB) (err error) {
		done, err = db.RollbackTable(r.Context(), req)
		return err
	})
	if wouldCreate && sqlitekv.CodeOf(err) == sqlitekv.CodeDatabaseNotFound {
		err = nil
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res := rollbackTableResponse{Success: true, DryRun: req.DryRun, ToTimestamp: unixtime.Millis(req.At), Count: done.Count,
		Changes: make([]rollbackAction, len(done.Changes)), Truncated: len(done.Changes) < done.Count}
	for i, a := range done.Changes {
		res.Changes[i] = rollbackAction{Key: a.Key, Action: a.Action}
	}
	if req.DryRun {
		res.Message = "Dry run: nothing was written; repeat with confirm=yes to apply " + strconv.Itoa(done.Count) + " changes"
	}
	writeJSON(w, http.StatusOK, res)
}

// parseRollbackTable applies only with confirm=yes and without dry_run;
// any other call reports what it would do.
func (s *Server) parseRollbackTable(r *http.Request, t target) (req sqlitekv.RollbackTableRequest, ref dbRef, err error) {
	if req.Table, err = t.q.table(); err != nil {
		return req, ref, err
	}
	if req.At, err = t.q.unixTime("to_timestamp"); err != nil {
		return req, ref, err
	}
	dry, err := t.q.boolean("dry_run", false)
	if err != nil {
		return req, ref, err
	}
	// Only yes applies, and it must be said so: confirm=true from a client
	// that means "apply" would otherwise be a dry run its client takes
	// for done.
	if confirm := t.q.Get("confirm"); t.q.has("confirm") && confirm != "yes" {
		return req, ref, invalidParam("confirm must be yes to apply the rollback (leave it out for a dry run), not %q", confirm)
	}
	req.DryRun = dry || !t.q.has("confirm") // given, it is yes
	if req.NoHistory, err = t.q.noHistory(); err != nil {
		return req, ref, err
	}
	var body rollbackTableBody
	if err := s.decodeKeyLists(r, &body); err != nil {
		return req, ref, err
	}
	if req.Keys, req.Exclude, err = body.selection(); err != nil {
		return req, ref, err
	}
	ref, err = t.q.writeDB()
	return req, ref, err
}
