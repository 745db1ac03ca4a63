package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/ferry-etl/ferry/engine"
)

// profileFlags are `ferry run`'s --cpuprofile and --memprofile: pprof
// files for `go tool pprof`, to see where a run spends CPU and memory.
type profileFlags struct {
	cpu, mem *string
}

func defineProfileFlags(fs *flag.FlagSet) *profileFlags {
	return &profileFlags{
		cpu: fs.String("cpuprofile", "", "write a CPU profile of the run to `file` (go tool pprof)"),
		mem: fs.String("memprofile", "", "write a heap profile to `file` when the run ends (go tool pprof; -sample_index=alloc_space shows allocations)"),
	}
}

// start begins CPU profiling when asked; stop ends it and writes the heap
// profile. A file that cannot be created is a usage error, before the run.
func (p *profileFlags) start() (stop func() error, err error) {
	var cpuFile *os.File
	if *p.cpu != "" {
		if cpuFile, err = os.Create(*p.cpu); err != nil {
			return nil, &engine.UsageError{Err: fmt.Errorf("--cpuprofile: %w", err)}
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, &engine.UsageError{Err: fmt.Errorf("--cpuprofile: %w", err)}
		}
	}
	var memFile *os.File
	if *p.mem != "" {
		if memFile, err = os.Create(*p.mem); err != nil {
			if cpuFile != nil {
				pprof.StopCPUProfile()
				cpuFile.Close()
			}
			return nil, &engine.UsageError{Err: fmt.Errorf("--memprofile: %w", err)}
		}
	}
	return func() error {
		var errs []error
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--cpuprofile: %w", err))
			}
		}
		if memFile != nil {
			runtime.GC() // the profile shows what is still live at the end
			if err := pprof.Lookup("heap").WriteTo(memFile, 0); err != nil {
				errs = append(errs, fmt.Errorf("--memprofile: %w", err))
			}
			if err := memFile.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--memprofile: %w", err))
			}
		}
		return errors.Join(errs...)
	}, nil
}
