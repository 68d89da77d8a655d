package control

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// ServerInfo is what a serving PocketBase writes to
// pb_data/processman/server.json, so that `pocketbase pm` finds the API.
type ServerInfo struct {
	// URL is where PocketBase serves (as given to children in PB_URL).
	URL string `json:"url"`
	// Pid is PocketBase's process id.
	Pid int `json:"pid"`
	// Database names the server's database without credentials
	// (database.Info.Identity), so that the CLI can tell when it opened
	// another one, e.g. run without a PostgreSQL fork's settings.
	Database string `json:"database,omitempty"`
}

// ServerInfoFile is the path of the server info file for a data dir.
func ServerInfoFile(dataDir string) string {
	return filepath.Join(dataDir, "processman", "server.json")
}

// ReadServerInfo reads the server info file of a data dir.
func ReadServerInfo(dataDir string) (ServerInfo, error) {
	var info ServerInfo
	b, err := os.ReadFile(ServerInfoFile(dataDir))
	if err != nil {
		return info, err
	}
	err = json.Unmarshal(b, &info)
	return info, err
}

// WriteServerInfo writes the server info file of a data dir, atomically.
func WriteServerInfo(dataDir string, info ServerInfo) (string, error) {
	path := ServerInfoFile(dataDir)
	b, _ := json.Marshal(info)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return path, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return path, err
	}
	return path, os.Rename(tmp, path)
}
