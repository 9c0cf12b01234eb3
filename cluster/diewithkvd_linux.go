package cluster

import (
	"os/exec"
	"syscall"
)

// dieWithKvd has cmd killed when kvd dies (kill -9 included): a restore
// left running would go on writing where a restarted kvd restores the
// same database. (Linux signals the child when the thread that started
// it ends; the Go runtime ends a thread only when a goroutine locked to
// it exits, which kvd's never do.)
func dieWithKvd(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
