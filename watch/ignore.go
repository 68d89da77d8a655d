package watch

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// pattern is one compiled ignore glob: a list of slash-separated segments,
// each a path.Match pattern or the special segment "**".
type pattern struct {
	src  string
	segs []string
}

// compilePatterns turns ignore globs into patterns. See the package
// documentation ("Ignore patterns") for the supported syntax.
func compilePatterns(globs []string) ([]pattern, error) {
	out := make([]pattern, 0, len(globs))
	for _, g := range globs {
		p := filepath.ToSlash(strings.TrimSpace(g))
		anchored := strings.HasPrefix(p, "/")
		for strings.HasPrefix(p, "./") {
			p = p[2:]
			anchored = true
		}
		p = strings.Trim(p, "/")
		if p == "" || p == "." {
			continue
		}
		var segs []string
		if !anchored && !strings.Contains(p, "/") {
			// No slash: matches any path component (a file's base name
			// or any directory on the way).
			segs = []string{"**", p}
		} else {
			for s := range strings.SplitSeq(p, "/") {
				if s == "" || s == "." {
					continue
				}
				if s == "**" && len(segs) > 0 && segs[len(segs)-1] == "**" {
					continue // a/**/**/b == a/**/b
				}
				segs = append(segs, s)
			}
		}
		for _, s := range segs {
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("watch: bad ignore pattern %q: %w", g, err)
			}
		}
		out = append(out, pattern{src: g, segs: segs})
	}
	return out, nil
}

// matchSegs reports whether the pattern segments match the path segments
// exactly; "**" matches zero or more whole segments.
func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(segs); i++ {
				if matchSegs(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// ignoredRel reports whether the slash-separated relative path segments are
// ignored. Because ignoring a directory ignores everything below it, a path
// is ignored when any pattern matches the path itself or one of its parent
// directories. Only prefixes longer than skip segments are considered: the
// first skip segments lead to an explicitly watched path, which is never
// ignored itself.
func ignoredRel(pats []pattern, segs []string, skip int) bool {
	for n := skip + 1; n <= len(segs); n++ {
		prefix := segs[:n]
		for i := range pats {
			if matchSegs(pats[i].segs, prefix) {
				return true
			}
		}
	}
	return false
}

// splitRel returns the slash-separated segments of a relative path ("." is
// the empty list).
func splitRel(rel string) []string {
	rel = filepath.ToSlash(rel)
	if rel == "." || rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// within reports whether p is dir or lies below it. Both must be clean.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if strings.HasSuffix(dir, string(filepath.Separator)) {
		return strings.HasPrefix(p, dir)
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}
