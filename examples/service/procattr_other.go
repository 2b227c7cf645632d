//go:build !linux

package main

import "syscall"

// childProcAttr: outside Linux there is no Pdeathsig; a node shuts down
// when its stdin (a pipe from the launcher) closes, which the kernel does
// when the launcher dies.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// processGone: the launcher reaps every child with Wait before asking, so a
// reaped child is gone.
func processGone(int) bool { return true }
