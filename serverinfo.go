package processman

import (
	"os"

	"github.com/processman/processman/control"
)

// writeServerInfo records where PocketBase serves for the CLI; a failure
// only costs the CLI its default address, so it is logged, not returned.
func (p *plugin) writeServerInfo(url string) {
	path, err := control.WriteServerInfo(p.app.DataDir(), control.ServerInfo{URL: url, Pid: os.Getpid()})
	if err != nil {
		p.app.Logger().Warn("processman: cannot write the server info file for the CLI", "file", path, "error", err.Error())
		return
	}
	p.mu.Lock()
	p.serverInfo = path
	p.mu.Unlock()
}
