package main

import (
	"os/exec"
	"syscall"
)

// dieWithTest has cmd killed when the test process ends, however it ends:
// a test binary that times out panics without running its cleanups, and
// a kvd it started would otherwise keep running.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
