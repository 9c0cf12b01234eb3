package sqlitekv

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// landingLate is a Dir whose groups pause between their COMMIT and the
// landing of their files, until land is closed.
type landingLate struct {
	*Dir
	committed, land chan struct{}
}

func (l landingLate) apply() error {
	close(l.committed)
	<-l.land
	return l.Dir.apply()
}

func TestDir_AReadWhileAGroupLandsWaitsForItsFiles(t *testing.T) {
	d, _ := mustOpenDir(t)
	w := d.Cache().Writer()
	mustDirPut(t, d, "changed", "old")
	mustDirPut(t, d, "deleted", "old")
	late := landingLate{d, make(chan struct{}), make(chan struct{})}
	w.mirror = late
	committed := make(chan error, 1)
	go func() {
		if err := w.Begin(); err != nil {
			committed <- err
			return
		}
		for _, k := range []string{"changed", "created"} {
			if _, err := w.Put(PutRequest{Table: "t", Key: k, Value: []byte("new"), ContentType: "text/plain"}); err != nil {
				committed <- err
				return
			}
		}
		if err := w.Delete(DeleteRequest{Table: "t", Key: "deleted"}); err != nil {
			committed <- err
			return
		}
		committed <- w.Commit()
	}()
	select {
	case <-late.committed:
	case err := <-committed:
		t.Fatalf("the group ended before its files landed: %v", err)
	}

	// Each read meets the cache committed and the old files: it must not
	// take them for changes made by hand.
	reads := make(chan string, 3)
	for _, k := range []string{"changed", "created", "deleted"} {
		go func() {
			e, _, err := d.Get(context.Background(), GetRequest{Table: "t", Key: k})
			if err != nil {
				reads <- fmt.Sprintf("%s=%s", k, CodeOf(err))
				return
			}
			reads <- fmt.Sprintf("%s=%s", k, e.Value)
		}()
	}
	time.Sleep(100 * time.Millisecond) // the reads look meanwhile
	close(late.land)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 3 {
		got[<-reads] = true
	}
	for _, want := range []string{"changed=new", "created=new", "deleted=" + string(CodeKeyNotFound)} {
		if !got[want] {
			t.Errorf("reads while the group's files landed: got %v, want %s", got, want)
		}
	}
}
