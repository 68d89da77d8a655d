package main

import "runtime/debug"

// The version of this build. `make build` and `make dist` set them from
// the VERSION file and git:
//
//	go build -ldflags "-X main.version=0.1.0 -X main.commit=1b1653c" ./cmd/pocketbase
var (
	version = "dev"
	commit  = ""
)

// versionText is what `pocketbase --version` prints after "pocketbase
// version": the PocketBase this binary carries, then processman's version
// and commit, as in "v0.39.11 (processman 0.1.0, commit 1b1653c)".
func versionText() string {
	text := pocketBaseVersion() + " (processman " + version
	if commit != "" {
		text += ", commit " + commit
	}
	return text + ")"
}

// pocketBaseVersion is the version of the PocketBase module this binary
// was built with (a fork's replacement included).
func pocketBaseVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/pocketbase/pocketbase" {
			if dep.Replace != nil && dep.Replace.Version != "" {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "(unknown)"
}
