package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat times (100 on every Linux platform Go
// supports).
const clockTick = 10 * time.Millisecond

// CPUTime returns the user plus system CPU time process pid has used so far.
func CPUTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("proc: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: the fields that follow start after
	// the last ')'.
	s := string(raw)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("proc: /proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("proc: /proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc: /proc/%d/stat: bad CPU times", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// parent returns process pid's parent's id.
func parent(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("proc: %w", err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return 0, fmt.Errorf("proc: /proc/%d/stat: too few fields", pid)
	}
	return strconv.Atoi(fields[1])
}

// Tree returns pid and the ids of all its descendants alive now.
func Tree(pid int) []int {
	entries, _ := filepath.Glob("/proc/[0-9]*")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		if pp, err := parent(p); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// CPUMeter measures the CPU time a set of processes uses between Start and Stop. Processes that start or
// end in between are missed, so measure long-lived ones.
type CPUMeter struct {
	pids  []int
	start map[int]time.Duration
}

// NewCPUMeter measures pids from now on.
func NewCPUMeter(pids []int) *CPUMeter {
	m := &CPUMeter{pids: pids, start: map[int]time.Duration{}}
	for _, pid := range pids {
		if t, err := CPUTime(pid); err == nil {
			m.start[pid] = t
		}
	}
	return m
}

// Used returns the CPU time the processes have used since NewCPUMeter.
func (m *CPUMeter) Used() time.Duration {
	var total time.Duration
	for _, pid := range m.pids {
		t0, ok := m.start[pid]
		if !ok {
			continue
		}
		if t, err := CPUTime(pid); err == nil {
			total += t - t0
		}
	}
	return total
}

// Memory is a process's resident memory, from /proc/<pid>/status.
type Memory struct {
	// RSS is the resident set size now (VmRSS).
	RSS int64
	// Peak is the largest resident set size so far (VmHWM).
	Peak int64
}

// ReadMemory returns process pid's resident memory in bytes.
func ReadMemory(pid int) (Memory, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("proc: %w", err)
	}
	var m Memory
	for line := range strings.SplitSeq(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			m.RSS = kb << 10
		case "VmHWM:":
			m.Peak = kb << 10
		}
	}
	if m.RSS == 0 {
		return Memory{}, fmt.Errorf("proc: /proc/%d/status: no VmRSS", pid)
	}
	return m, nil
}
