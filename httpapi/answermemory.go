package httpapi

import "github.com/kvd/kvd/sqlitekv"

// An answer holds its bytes in memory until its client has read them,
// and a client may read nothing for as long as the stall sweep lets it
// (conns.go): a hundred such clients asking for a 10 MiB value each held
// a gigabyte. So a read's answer of heldAnswerMin bytes or more holds its
// size from the server's answer memory (as large as the request bodies'
// budget) while it is written; when that is spent, the answer is a 503 to
// retry, and the answers whose clients have taken nothing for a second
// give way (their connections are closed), so a retry finds room. Smaller
// answers fit in the socket's buffers and are not counted, nor are a
// write's: it is done, and a 503 would have its client do it again.
const heldAnswerMin = 64 << 10

// holdAnswer takes n bytes of answer memory for an answer about to be
// written; release gives them back once it is.
func (s *Server) holdAnswer(n int) (release func(), err error) {
	if n < heldAnswerMin {
		return func() {}, nil
	}
	size := min(int64(n), s.cfg.MaxBodyMemory) // one answer always fits on its own
	if s.answerMemory.Add(-size) < 0 {
		s.answerMemory.Add(size)
		if l, ok := s.ln.(*connLimiter); ok {
			go l.closeStalledAnswers(writeStalledAfter)
		}
		return nil, sqlitekv.Errorf(sqlitekv.CodeOverloaded, "Too many large answers are waiting for their clients to read them; retry shortly")
	}
	return func() { s.answerMemory.Add(size) }, nil
}
