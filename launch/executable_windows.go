package launch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// executable reports why path cannot be run: missing, a directory, or
// not a program Windows starts (.exe, .com, .bat, .cmd); Windows has no
// execute bit.
func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return ErrNotFound
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".exe", ".com", ".bat", ".cmd":
		return nil
	}
	return errors.New("is not a program (.exe, .com, .bat or .cmd); set \"interpreter\" to the program that runs it")
}
