package processman

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// ServerInfo is what a serving PocketBase writes to
// pb_data/processman/server.json, so that `pocketbase pm` finds it.
type ServerInfo struct {
	// URL is where PocketBase serves (as given to children in PB_URL).
	URL string `json:"url"`
	// Pid is PocketBase's process id.
	Pid int `json:"pid"`
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

// writeServerInfo records where PocketBase serves; a failure only costs
// the CLI its default address, so it is logged, not returned.
func (p *plugin) writeServerInfo(url string) {
	path := ServerInfoFile(p.app.DataDir())
	b, _ := json.Marshal(ServerInfo{URL: url, Pid: os.Getpid()})
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		p.app.Logger().Warn("processman: cannot write the server info file for the CLI", "file", path, "error", err.Error())
		return
	}
	p.mu.Lock()
	p.serverInfo = path
	p.mu.Unlock()
}
