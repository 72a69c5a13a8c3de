package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuSample is where CPU time had gone at one instant: on the whole machine,
// in the server, and in this process (the load generator). Telling them
// apart shows whether a run had the machine to itself, and gives the
// server's CPU per read, a figure other work on the machine barely moves.
type cpuSample struct {
	at          time.Time
	busy, total time.Duration // all CPUs: not idle or waiting for I/O, and everything
	server      time.Duration
	self        time.Duration
}

// sampleCPU reads the counters; a counter it cannot read stays zero.
func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	s.busy, s.total = machineCPU()
	s.server = processCPU(serverPID)
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// machineCPU reads the first line of /proc/stat: user nice system idle
// iowait irq softirq steal, in ticks.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := 1; i < len(f) && i <= 8; i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		total += time.Duration(n) * clockTick
		if i != 4 && i != 5 { // idle, iowait
			busy += time.Duration(n) * clockTick
		}
	}
	return busy, total
}

// processCPU is a process's user and system time, from /proc/<pid>/stat.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of the whole line
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// cpuUse is how CPU time was spent between two samples, in CPUs (1 = one
// core busy all the time).
type cpuUse struct {
	cpus                         int
	machine, server, load, other float64
}

func cpuBetween(a, b cpuSample, cpus int) cpuUse {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return cpuUse{cpus: cpus}
	}
	u := cpuUse{cpus: cpus}
	// The machine's counters cover all CPUs: scale by the share of busy time.
	if total := (b.total - a.total).Seconds(); total > 0 {
		u.machine = float64(cpus) * (b.busy - a.busy).Seconds() / total
	}
	u.server = (b.server - a.server).Seconds() / wall
	u.load = (b.self - a.self).Seconds() / wall
	u.other = max(0, u.machine-u.server-u.load)
	return u
}

func (u cpuUse) String() string {
	return fmt.Sprintf("%.2f of %d CPUs busy: server %.2f, load generator %.2f, the rest (database, other work) %.2f",
		u.machine, u.cpus, u.server, u.load, u.other)
}
