package sqlitekv

import (
	"context"
	"errors"
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

// pauseLanding runs a group of writes on d's owner that commits and then
// waits to land its files until the test calls land; the group's error
// comes on done.
func pauseLanding(t *testing.T, d *Dir, writes func(w *Writer) error) (land func(), done <-chan error) {
	t.Helper()
	w := d.Cache().Writer()
	late := landingLate{d, make(chan struct{}), make(chan struct{})}
	w.mirror = late
	committed := make(chan error, 1)
	go func() {
		if err := w.Begin(); err != nil {
			committed <- err
			return
		}
		if err := writes(w); err != nil {
			w.abandon()
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
	landed := false
	land = func() {
		if !landed {
			landed = true
			close(late.land)
		}
	}
	t.Cleanup(land)
	return land, committed
}

func TestDir_AReadWhileAGroupLandsWaitsForItsFiles(t *testing.T) {
	d, _ := mustOpenDir(t)
	mustDirPut(t, d, "changed", "old")
	mustDirPut(t, d, "deleted", "old")
	land, committed := pauseLanding(t, d, func(w *Writer) error {
		for _, k := range []string{"changed", "created"} {
			if _, err := w.Put(PutRequest{Table: "t", Key: k, Value: []byte("new"), ContentType: "text/plain"}); err != nil {
				return err
			}
		}
		return w.Delete(DeleteRequest{Table: "t", Key: "deleted"})
	})

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
	land()
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

// A read that waits out a landing ends with its request: a disk stuck
// in the landing's fsync must not hold reads whose clients have gone.
func TestDir_AReadWaitingForALandingEndsWithItsContext(t *testing.T) {
	d, _ := mustOpenDir(t)
	mustDirPut(t, d, "k", "old")
	pauseLanding(t, d, func(w *Writer) error {
		_, err := w.Put(PutRequest{Table: "t", Key: "k", Value: []byte("new"), ContentType: "text/plain"})
		return err
	})
	ctx, cancel := context.WithCancel(context.Background())
	read := make(chan error, 1)
	go func() {
		_, _, err := d.Get(ctx, GetRequest{Table: "t", Key: "k"})
		read <- err
	}()
	time.Sleep(50 * time.Millisecond) // the read finds the landing
	cancel()
	select {
	case err := <-read:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a read cancelled while it waited for a landing: got %v, want it cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled read still waits for the landing")
	}
}

// The owner never waits for readers: a read that waited out a landing
// and reads again may wait for a read connection (a long history page
// holds the only one), and the next group must not wait with it.
func TestDir_TheNextGroupDoesNotWaitForAReadThatWaitedOutALanding(t *testing.T) {
	d, err := OpenDir(t.TempDir(), Options{Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustDirPut(t, d, "k", "old")
	land, committed := pauseLanding(t, d, func(w *Writer) error {
		_, err := w.Put(PutRequest{Table: "t", Key: "k", Value: []byte("new"), ContentType: "text/plain"})
		return err
	})
	go d.Get(context.Background(), GetRequest{Table: "t", Key: "k"})
	time.Sleep(50 * time.Millisecond) // the read finds the landing
	held, release := make(chan struct{}), make(chan struct{})
	go d.cache.readTx(context.Background(), "t", func(*readStmts) error {
		close(held)
		<-release
		return nil
	})
	<-held
	land()
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the read waits for the connection

	w := d.Cache().Writer()
	w.mirror = d
	next := make(chan error, 1)
	go func() { next <- dirPut(t, d, "other", "x") }()
	select {
	case err := <-next:
		if err != nil {
			t.Error(err)
		}
		close(release)
	case <-time.After(10 * time.Second):
		t.Error("the next group waits for a read")
		close(release)
		<-next
	}
}
