package processman

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
)

// processSource is where the processes come from: a config file (the
// --processes flag, Config.ProcessesFile, or pb_processes.json beside
// pb_data) and Go code (Config.Processes).
type processSource struct {
	app         core.App
	file        string // Config.ProcessesFile
	flag        string // --processes, or the file given to `pm check`
	goProcesses []config.Process
	logsDir     string // Config.LogsDir
}

// path returns the config file to load and whether it was asked for
// explicitly (and so must exist).
func (s *processSource) path() (string, bool) {
	switch {
	case s.flag != "":
		return s.flag, true
	case s.file != "":
		return s.file, true
	}
	return filepath.Join(s.app.DataDir(), "..", config.FileName), false
}

// load gathers the processes of the file and of Go code. Every problem
// is returned; entries with problems come back too, with their errors,
// so that they can be shown as errored. notes say what was made of
// entries that could be read two ways.
func (s *processSource) load() (procs []config.Process, errs, notes config.Errors) {
	path, explicit := s.path()
	file, err := config.Load(path)
	var cfgErrs config.Errors
	switch {
	case err == nil:
	case errors.As(err, &cfgErrs):
		errs = append(errs, cfgErrs...)
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// no file beside pb_data: only Go-registered processes
	default:
		errs = append(errs, config.Error{File: path, Index: -1, Message: err.Error(), Hint: "check the --processes flag or Config.ProcessesFile"})
	}
	if file != nil {
		procs = append(procs, file.Processes...)
		notes = file.Notes
	}

	baseDir := filepath.Join(s.app.DataDir(), "..")
	for _, proc := range s.goProcesses {
		if proc.Cwd == "" {
			proc.Cwd = baseDir
		} else if !filepath.IsAbs(proc.Cwd) {
			proc.Cwd = filepath.Join(baseDir, proc.Cwd)
		}
		procs = append(procs, proc)
	}
	goErrs := config.Check(procs, "")
	fileCount := len(procs) - len(s.goProcesses)
	for _, e := range goErrs {
		if e.Index >= fileCount { // file entries were checked by Load
			e.Path = fmt.Sprintf("Config.Processes[%d]", e.Index-fileCount)
			errs = append(errs, e)
		}
	}
	for _, e := range config.CheckDependencies(procs, path) {
		if e.Index >= fileCount {
			e.File, e.Path = "", fmt.Sprintf("Config.Processes[%d]/%s", e.Index-fileCount, strings.SplitN(e.Path, "/", 4)[3])
		} else if file != nil {
			e = file.Locate(config.Errors{e})[0]
		}
		errs = append(errs, e)
	}
	for _, e := range config.CheckLogFiles(procs, s.logFile, s.protected(path), path) {
		if e.Index >= fileCount {
			e.File, e.Path = "", fmt.Sprintf("Config.Processes[%d]/log_file", e.Index-fileCount)
		} else {
			e = file.Locate(config.Errors{e})[0]
		}
		errs = append(errs, e)
	}
	return procs, errs, notes
}

// logFile is where the output of proc is written, "" for nowhere.
func (s *processSource) logFile(proc config.Process) string {
	return proc.WithDefaults().LogFilePath(logsDir(s.logsDir, s.app.DataDir()))
}

// protected is what no log file may be written over (see
// config.Protected): PocketBase's data and the files it reads.
func (s *processSource) protected(configFile string) config.Protected {
	dataDir := s.app.DataDir()
	base := filepath.Join(dataDir, "..")
	p := config.Protected{
		DataDir: dataDir,
		OwnDir:  filepath.Join(dataDir, "processman"),
		Paths:   []string{configFile, filepath.Join(base, "pb_hooks"), filepath.Join(base, "pb_migrations"), filepath.Join(base, "pb_public")},
	}
	if exe, err := os.Executable(); err == nil {
		p.Paths = append(p.Paths, exe)
	}
	return p
}
