package main

import "syscall"

// childAttr: the child gets SIGTERM when dev mode dies, however it dies,
// and has its own process group, so that a Ctrl-C in the terminal stops dev
// mode first (which drains its deliveries) and only then Redis.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}
