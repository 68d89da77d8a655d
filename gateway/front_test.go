package gateway

import (
	"net/http"
	"testing"
)

func TestIsCleanPath(t *testing.T) {
	for path, want := range map[string]bool{
		"/":              true,
		"/api/side":      true,
		"/api/side/":     true,
		"/api/side/a%2F": true,
		"/api/side/.x":   true,
		"/api/side/x..":  true,
		"":               false,
		"api/side":       false,
		"//api/side":     false,
		"/api//side":     false,
		"/api/./side":    false,
		"/api/../side":   false,
		"/api/side/.":    false,
		"/api/side/..":   false,
	} {
		if got := isCleanPath(path); got != want {
			t.Errorf("isCleanPath(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestAuthToken(t *testing.T) {
	for header, want := range map[string]string{"": "", "abc": "abc", "Bearer abc": "abc", "bearer abc": "abc", "Bearer ": "Bearer "} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", header)
		if got := authToken(r); got != want {
			t.Errorf("authToken(%q) = %q, want %q", header, got, want)
		}
	}
}
