//go:build !windows

package launch

import (
	"errors"
	"os"
)

// executable reports why path cannot be run: missing, a directory, or
// without an execute bit.
func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return ErrNotFound
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return errors.New("is not executable (chmod +x it, or set \"interpreter\")")
	}
	return nil
}
