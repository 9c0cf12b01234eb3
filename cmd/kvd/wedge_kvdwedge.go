//go:build kvdwedge

package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kvd/kvd/actors"
)

// In a test build, SIGUSR1 wedges the actor of database "wedged" (see
// TestWatchdog_StopsPingingWhileAnActorHangs).
func init() {
	afterStart = func(reg *actors.Registry, log *slog.Logger) {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() {
			<-usr1
			db, err := reg.Open(context.Background(), "wedged", true, false)
			if err != nil {
				log.Error("test build: cannot open the database to wedge", "err", err)
				return
			}
			db.Wedge()
			db.Release()
			log.Warn("test build: the actor of database wedged hangs from now on")
		}()
	}
}
