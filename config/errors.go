package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a process configuration: where it is,
// what is wrong and how to fix it.
type Error struct {
	// File is the config file, empty for processes registered from Go.
	File string `json:"file,omitempty"`
	// Path is the JSON pointer of the offending value, e.g. "/processes/0/name".
	Path string `json:"path,omitempty"`
	// Line and Column locate syntax errors (1-based), zero otherwise.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Process is the name of the entry the error belongs to, when known.
	Process string `json:"process,omitempty"`
	// Index is the entry's position in the processes list, -1 when the
	// error is not about one entry.
	Index int `json:"index"`
	// Message says what is wrong; Hint says what to do.
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Process != "" {
			fmt.Fprintf(&b, " (process %q)", e.Process)
		}
		b.WriteString(": ")
	} else if e.Process != "" {
		fmt.Fprintf(&b, "process %q: ", e.Process)
	}
	b.WriteString(e.Message)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Errors is every problem found in a configuration. Loading never stops
// at the first one, so a user can fix them all at once.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	noun := "errors"
	if len(es) == 1 {
		noun = "error"
	}
	return fmt.Sprintf("processman: %d config %s:\n  %s", len(es), noun, strings.Join(lines, "\n  "))
}

// ForIndex returns the errors of the entry at index i.
func (es Errors) ForIndex(i int) Errors {
	var out Errors
	for _, e := range es {
		if e.Index == i {
			out = append(out, e)
		}
	}
	return out
}

// sorted orders errors by position in the file.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Index != es[j].Index {
			return es[i].Index < es[j].Index
		}
		return es[i].Path < es[j].Path
	})
	return es
}

// OrNil returns nil when there are no errors, so that callers can
// compare the result with nil.
func (es Errors) OrNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// suggest returns the known word closest to word, if it is close enough
// to be a likely typo.
func suggest(word string, known []string) string {
	best, bestDist := "", len(word)/2+2
	for _, k := range known {
		if d := editDistance(strings.ToLower(word), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
