package httpapi

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// bytesAcked is how much of what kvd sent on c its client has taken
// (TCP_INFO's tcpi_bytes_acked): it grows while the client reads, however
// slowly, and stays put while it reads nothing.
func bytesAcked(c net.Conn) (acked uint64, ok bool) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	err = raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if err != nil || info == nil {
		return 0, false
	}
	return info.Bytes_acked, true
}
