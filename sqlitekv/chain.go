package sqlitekv

import (
	"errors"

	"github.com/ncruces/go-sqlite3"
)

// A key's versions form a chain, newest to oldest, threaded through the
// history rows themselves: each row holds its key's previous row (prev),
// its place in the key's history (seq: 1, 2, 3, …) and a skip pointer
// (jump) to an older row of the key. The newest row of a live key is its
// values row's version; of a removed key, its row in the removed table.
//
// A write therefore appends a row and touches nothing at a random place
// that the values row does not already: a per-key index on (key, ts),
// which this replaces, dirtied one more page per key written at every
// commit, and cost most of a bulk write.
//
// The skip pointers are Myers' ("An applicative random-access stack",
// 1983): jump reaches the row at depth jumpSeq(seq), which makes every
// search down a chain of n rows O(log n) hops, and a new row's jump is
// found from its parent alone. Each row also keeps the time of the row it
// jumps to (jump_ts), so a step of a search knows whether to jump without
// reading that row. Retention deletes a chain's oldest rows: a pointer to
// a deleted row reads as missing, and a search goes on by prev.

// errBrokenChain is a chain that leads to a row that is not there.
var errBrokenChain = errors.New("sqlitekv: a history row a chain leads to is missing")

// jumpSeq is the seq a version's skip pointer reaches: with d = seq-1 in
// skew binary (digit weights 1, 3, 7, 15, …), the jump spans the weight
// of d's lowest nonzero digit. 0 for the first version: it has none.
func jumpSeq(seq int64) int64 {
	d := seq - 1
	if d <= 0 {
		return 0
	}
	w := int64(1)
	for w <= (d-1)/2 {
		w = 2*w + 1 // the largest weight not above d
	}
	low := w
	for rest := d; rest > 0; rest -= w {
		for w > rest {
			w /= 2 // (2^k-1)/2 = 2^(k-1)-1, the next weight down
		}
		low = w
	}
	return seq - low
}

// hop is the part of a history row a search reads: never its value.
// jumpTs is the time of the row jump points at, so that a search can tell
// whether to take the jump without reading that row.
type hop struct {
	op, seq, prev, jump, ts, jumpTs int64
}

// hopColumns are a hop's columns, in scanHop's order.
const hopColumns = `op_number, seq, coalesce(prev, 0), coalesce(jump, 0), ts, coalesce(jump_ts, 0)`

// scanHop reads hopColumns from column i on.
func scanHop(s *sqlite3.Stmt, i int) hop {
	return hop{op: s.ColumnInt64(i), seq: s.ColumnInt64(i + 1), prev: s.ColumnInt64(i + 2),
		jump: s.ColumnInt64(i + 3), ts: s.ColumnInt64(i + 4), jumpTs: s.ColumnInt64(i + 5)}
}

// chainStmts are the statements that walk a table's chains.
type chainStmts struct {
	head, hop *sqlite3.Stmt
}

func prepareChain(p *stmtSet, n tableNames) chainStmts {
	return chainStmts{
		// A live key's newest version is its values row's; a removed
		// key's, the removed table's. A key has one or the other.
		head: p.prepare(`SELECT version, 0 FROM ` + n.values + ` WHERE key = ?1
UNION ALL SELECT head, 1 FROM ` + n.removed + ` WHERE key = ?1`),
		hop: p.prepare(`SELECT ` + hopColumns + ` FROM ` + n.history + ` WHERE op_number = ?1`),
	}
}

// headOf returns the op number of key's newest version (0: the key has
// no history) and whether the key was removed by it.
func (c *chainStmts) headOf(key string) (op int64, removed bool, err error) {
	_, err = bind(c.head).text(key).row(func(s *sqlite3.Stmt) { op, removed = s.ColumnInt64(0), s.ColumnBool(1) })
	if err != nil {
		return 0, false, dbError(err)
	}
	return op, removed, nil
}

// read returns the hop of row op; false when there is none (retention
// deleted it, or op is 0).
func (c *chainStmts) read(op int64) (h hop, found bool, err error) {
	if op == 0 {
		return hop{}, false, nil
	}
	found, err = bind(c.hop).int(op).row(func(s *sqlite3.Stmt) { h = scanHop(s, 0) })
	if err != nil {
		return hop{}, false, dbError(err)
	}
	return h, found, nil
}

// newest returns key's newest row.
func (c *chainStmts) newest(key string) (h hop, found bool, err error) {
	op, _, err := c.headOf(key)
	if err != nil {
		return hop{}, false, err
	}
	return c.read(op)
}

// seek walks down from row from to the newest row at or before the point
// reached says key's history has come to: reached must hold for a row
// and every older one, and look only at op and ts. It returns that row,
// or found false when no row kept is reached; oldest is then the oldest
// row kept. It reads one row a step.
func (c *chainStmts) seek(from hop, reached func(hop) bool) (at hop, found bool, oldest hop, err error) {
	cur := from
	for !reached(cur) {
		// The answer is older than cur: skip when the jump lands still
		// too new (its time is in cur), else step back one.
		if jumpSeq(cur.seq) < cur.seq-1 && !reached(hop{op: cur.jump, ts: cur.jumpTs}) {
			j, ok, err := c.read(cur.jump)
			if err != nil {
				return hop{}, false, hop{}, err
			}
			if ok {
				cur = j
				continue
			}
		}
		p, ok, err := c.read(cur.prev)
		if err != nil || !ok {
			return hop{}, false, cur, err
		}
		cur = p
	}
	return cur, true, hop{}, nil
}

// atSeq returns the row of from's chain whose seq is seq; false when
// retention deleted it (or seq is not below from's).
func (c *chainStmts) atSeq(from hop, seq int64) (hop, bool, error) {
	cur := from
	for cur.seq > seq {
		next := cur.prev
		if jumpSeq(cur.seq) >= seq {
			next = cur.jump
		}
		h, ok, err := c.read(next)
		if err != nil || !ok {
			return hop{}, false, err
		}
		cur = h
	}
	return cur, cur.seq == seq, nil
}

// oldestKept returns the oldest row retention left of the chain from from.
func (c *chainStmts) oldestKept(from hop) (hop, error) {
	_, _, oldest, err := c.seek(from, func(hop) bool { return false })
	return oldest, err
}
