package report

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes the host a run measured.
type Machine struct {
	// CPU is the processor's model name.
	CPU string
	// Cores is how many logical CPUs the Go runtime sees.
	Cores int
	// MemoryMiB is the total memory.
	MemoryMiB int
	// Go is the Go version the suite was built with.
	Go string
	// Kernel is the kernel release.
	Kernel string
	// OS is the distribution's name.
	OS string
	// PostgreSQL is the server version the database benchmarks ran against.
	PostgreSQL string
	// LoadBefore and LoadAfter are the load averages (1, 5, 15 minutes) when the run started and ended.
	LoadBefore, LoadAfter string
}

// ReadMachine describes this host from /proc and the Go runtime; PostgreSQL and LoadAfter are filled in later.
func ReadMachine() Machine {
	return Machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		MemoryMiB:  memTotalMiB(),
		Go:         runtime.Version(),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		OS:         osName(),
		LoadBefore: LoadAverage(),
	}
}

// LoadAverage returns the 1, 5 and 15 minute load averages and the running/total task counts, as
// /proc/loadavg says them.
func LoadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 4 {
		return "unknown"
	}
	return strings.Join(f[:3], " ") + " (runnable/total tasks " + f[3] + ")"
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func cpuModel() string {
	for line := range strings.SplitSeq(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotalMiB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(fields[1])
			return kb / 1024
		}
	}
	return 0
}

func osName() string {
	for line := range strings.SplitSeq(readFile("/etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}
