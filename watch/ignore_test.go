package watch

import (
	"strings"
	"testing"
)

func TestIgnorePatterns(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		path    string // relative to Root, slash-separated
		skip    int
		want    bool
	}{
		{"bare name matches dir anywhere", "node_modules", "web/node_modules/x/index.js", 0, true},
		{"bare name matches top dir", "node_modules", "node_modules", 0, true},
		{"bare name needs whole component", "node_modules", "my_node_modules/a.js", 0, false},
		{"bare glob matches base name", "*.pyc", "pkg/mod.pyc", 0, true},
		{"bare glob matches dir component", "*.egg-info", "pkg/x.egg-info/PKG-INFO", 0, true},
		{"bare glob no match", "*.pyc", "pkg/mod.py", 0, false},
		{"editor backup", "*~", "src/main.py~", 0, true},
		{"emacs lock", ".#*", "src/.#main.py", 0, true},
		{"slash pattern anchored", "build/out", "build/out/app.js", 0, true},
		{"slash pattern not floating", "build/out", "web/build/out/app.js", 0, false},
		{"leading slash anchors", "/dist", "dist/a.js", 0, true},
		{"leading slash not floating", "/dist", "web/dist/a.js", 0, false},
		{"dot slash anchors", "./dist", "web/dist/a.js", 0, false},
		{"trailing slash dropped", "dist/", "web/dist/a.js", 0, true},
		{"trailing doublestar", "build/**", "build/a/b/c.js", 0, true},
		{"trailing doublestar includes dir", "build/**", "build", 0, true},
		{"trailing doublestar other dir", "build/**", "builder/a.js", 0, false},
		{"leading doublestar", "**/tmp/*.out", "a/b/tmp/x.out", 0, true},
		{"leading doublestar zero dirs", "**/tmp/*.out", "tmp/x.out", 0, true},
		{"leading doublestar wrong ext", "**/tmp/*.out", "a/tmp/x.txt", 0, false},
		{"middle doublestar", "docs/**/*.md", "docs/a/b/readme.md", 0, true},
		{"middle doublestar zero", "docs/**/*.md", "docs/readme.md", 0, true},
		{"star does not cross slash", "src/*.js", "src/a/b.js", 0, false},
		{"star in segment", "src/*.js", "src/b.js", 0, true},
		{"explicit path itself not ignored", "pb_data", "pb_data/hooks", 2, false},
		{"below explicit path", "pb_data", "pb_data/hooks/x.js", 2, false},
		{"below explicit path still ignores inside", "*.db", "pb_data/hooks/x.db", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pats, err := compilePatterns([]string{tt.pattern})
			if err != nil {
				t.Fatal(err)
			}
			got := ignoredRel(pats, strings.Split(tt.path, "/"), tt.skip)
			if got != tt.want {
				t.Errorf("pattern %q path %q skip %d: ignored=%v, want %v", tt.pattern, tt.path, tt.skip, got, tt.want)
			}
		})
	}
}

func TestBadPattern(t *testing.T) {
	for _, p := range []string{"[", "a/[b", `x\`} {
		t.Run(p, func(t *testing.T) {
			if _, err := compilePatterns([]string{p}); err == nil {
				t.Errorf("pattern %q: no error", p)
			}
		})
	}
}
