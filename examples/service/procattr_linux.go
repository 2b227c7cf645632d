package main

import "syscall"

// childProcAttr makes the kernel SIGKILL a node when the launcher dies,
// however it dies (even kill -9), so no node outlives it. Pdeathsig fires
// when the thread that started the child exits; the Go runtime does not
// exit threads that are not locked, so in practice it fires on process exit.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processGone reports whether no process has this pid any more (signal 0
// probes without sending anything).
func processGone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }
