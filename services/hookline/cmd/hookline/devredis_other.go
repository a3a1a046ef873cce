//go:build !linux

package main

import "syscall"

// childAttr: its own process group, so that a Ctrl-C in the terminal stops
// dev mode first (which drains its deliveries) and only then Redis. Outside
// Linux there is no parent-death signal: a SIGKILL of dev mode leaves Redis
// running, and the next start waits for it (stop it by its pid file).
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
