package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifyReady tells systemd (Type=notify) that kvd serves, once the
// listener is bound and the data dir checked, and starts the watchdog
// pings when WatchdogSec is set. Outside systemd both are no-ops. The
// returned func stops the pings.
//
// A tick pings only when alive answers nil within half the ping interval:
// a free-running ticker would keep a kvd whose database actors hang
// looking healthy to systemd forever.
func notifyReady(log *slog.Logger, alive func(context.Context) error) (stop func()) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("systemd readiness notification failed", "err", err)
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return func() {}
	}
	// Ping at half the deadline, so one late tick is not fatal.
	t := time.NewTicker(interval / 2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), interval/4)
				err := alive(ctx)
				cancel()
				if err != nil {
					log.Error("watchdog not pinged: kvd cannot answer", "err", err)
					continue
				}
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			case <-done:
				return
			}
		}
	}()
	return func() { t.Stop(); close(done) }
}

func notifyStopping(log *slog.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyStopping); err != nil {
		log.Warn("systemd stopping notification failed", "err", err)
	}
}
