package redact

import (
	"strings"
	"testing"
)

func TestValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:hunter2@db:5432/app?sslmode=require", "postgres://app:" + Mask + "@db:5432/app?sslmode=require"},
		{"https://api.example.com/v1?api_key=sk-123&model=x", "https://api.example.com/v1?api_key=" + Mask + "&model=x"},
		{"https://x.example/cb?token=abc", "https://x.example/cb?token=" + Mask},
		{"redis://h:6379/0?password=p4ss", "redis://h:6379/0?password=" + Mask},
		{"Server=db;Database=app;User Id=sa;Password=S3cr3t!;", "Server=db;Database=app;User Id=sa;Password=" + Mask + ";"},
		{"host=db dbname=app user=app password='two words' sslmode=disable", "host=db dbname=app user=app password=" + Mask + " sslmode=disable"},
		{"Pwd=abc", "Pwd=" + Mask},
		{"mysql://u:p@tcp(db)/app", "mysql://u:" + Mask + "@tcp(db)/app"},
		{"http://127.0.0.1:8090", "http://127.0.0.1:8090"},
		{"plain words, no secrets", "plain words, no secrets"},
		{"mode=test", "mode=test"},
	} {
		got, changed := Value(tc.in)
		if got != tc.want || changed != (tc.in != tc.want) {
			t.Errorf("Value(%q) = %q, %v; want %q", tc.in, got, changed, tc.want)
		}
	}
}

func TestArgs(t *testing.T) {
	got := strings.Join(Args([]string{"python", "app.py", "--api-key", "sk-1", "--token=abc", "--port", "8000",
		"--db", "postgres://a:b@h/d", "-p", "x"}), " ")
	want := "python app.py --api-key " + Mask + " --token=" + Mask + " --port 8000 --db postgres://a:" + Mask + "@h/d -p x"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestName(t *testing.T) {
	for _, name := range []string{"OPENAI_API_KEY", "PB_GATEWAY_SECRET", "DB_PASSWORD", "access_token", "AUTH", "session_id", "DB_DSN", "KEY"} {
		if !Name(name) {
			t.Errorf("%s is not a secret name", name)
		}
	}
	for _, name := range []string{"PORT", "PB_URL", "MODE", "MONKEY", "PATH"} {
		if Name(name) {
			t.Errorf("%s is a secret name", name)
		}
	}
}
