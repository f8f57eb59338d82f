package config

import (
	"strings"
	"testing"
)

func TestMaskString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://app:s3cr3t@db:5432/app?sslmode=disable", "postgres://app:xxxxx@db:5432/app?sslmode=disable"},
		{"postgres://app@/app?host=/run/postgresql", "postgres://app@/app?host=/run/postgresql"}, // no password
		{"postgres://app:p%40ss:w@db/app", "postgres://app:xxxxx@db/app"},
		{"https://user:tok@example.com/x", "https://user:xxxxx@example.com/x"},
		{"redis://:only-password@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"host=db user=app password=s3cr3t dbname=app", "host=db user=app password=xxxxx dbname=app"},
		{"host=db password='a b\\'c' dbname=app", "host=db password=xxxxx dbname=app"},
		{"host=db PASSWORD = x", "host=db PASSWORD=xxxxx"},
		{"host=db password='a'b dbname=app", "host=db password=xxxxx dbname=app"}, // what sticks to the quote
		{"host=db password='never closed dbname=app", "host=db password=xxxxx"},   // masked to the end
		{"host=db password='ends in \\", "host=db password=xxxxx"},
		{"postgres://app@db/app?password=s3cr3t&sslmode=require", "postgres://app@db/app?password=xxxxx&sslmode=require"},
		{"postgres://app@db/app?sslpassword=k", "postgres://app@db/app?sslpassword=xxxxx"},
		{"http://127.0.0.1:8001", "http://127.0.0.1:8001"},
		{"127.0.0.1:8000", "127.0.0.1:8000"},
		{"unix:/tmp/a.sock", "unix:/tmp/a.sock"},
		{"user_password_hint=none", "user_password_hint=none"}, // a key that only contains one
	} {
		if got := MaskString(tt.in); got != tt.want {
			t.Errorf("MaskString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for key, want := range map[string]bool{
		"DB_PASSWORD": true, "PGPASSWORD": true, "github_token": true, "CLIENT_SECRET": true,
		"api_key": true, "apiKey": true, "PRIVATE_KEY": true, "aws_access_key_id": true, "password": true,
		"DATABASE_URL": false, "dsn": false, "upstream": false, "keepalive": false, "keyfile": false, "body": false,
	} {
		if got := IsSecretKey(key); got != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestPrintYAMLMasksSecrets: --print-config's YAML masks raw_env and route
// options by name and passwords inside values; YAML (what the supervisor
// hands the serving process) keeps them.
func TestPrintYAMLMasksSecrets(t *testing.T) {
	c := Default()
	c.RawEnv = []string{"DB_PASSWORD=hunter2", "DATABASE_URL=postgres://app:hunter2@db/app", "MODE=prod"}
	c.Routes = []Route{{Path: "/users", Mount: true, Handler: "users", Options: map[string]any{
		"dsn":       "host=db password=hunter2",
		"api_token": "hunter2",
		"nested":    map[string]any{"client_secret": "hunter2", "url": "https://u:hunter2@x/"},
		"list":      []any{"postgres://a:hunter2@b/c"},
		"pool":      4,
	}}}
	masked, err := c.PrintYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- DB_PASSWORD=xxxxx", "- DATABASE_URL=postgres://app:xxxxx@db/app", "- MODE=prod",
		"dsn: host=db password=xxxxx", "api_token: xxxxx", "client_secret: xxxxx", "url: https://u:xxxxx@x/",
		"- postgres://a:xxxxx@b/c", "pool: 4", "mount: /users", "print as xxxxx",
	} {
		if !contains(masked, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, masked)
		}
	}
	if contains(masked, "hunter2") {
		t.Errorf("--print-config shows a secret:\n%s", masked)
	}
	plain, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(plain, "DB_PASSWORD=hunter2") || !contains(plain, "api_token: hunter2") {
		t.Errorf("YAML (the serving process's config) must keep the values:\n%s", plain)
	}
	if c.RawEnv[0] != "DB_PASSWORD=hunter2" || c.Routes[0].Options["api_token"] != "hunter2" {
		t.Error("PrintYAML changed the config")
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// FuzzMaskString: masking never panics, is idempotent, and never lets the
// password of a URL built around the input through.
func FuzzMaskString(f *testing.F) {
	for _, s := range []string{"postgres://app:s3cr3t@db/app", "host=db password='a b'", "x", "a://:@", "password=", "https://u:p@h/?token=t"} {
		f.Add(s, "hunter2")
	}
	f.Fuzz(func(t *testing.T, s, pass string) {
		once := MaskString(s)
		if twice := MaskString(once); twice != once {
			t.Errorf("MaskString not idempotent: %q -> %q -> %q", s, once, twice)
		}
		if len(pass) < 4 || strings.ContainsAny(pass, "@/: \t\n\r\v\f\x85\u00a0") || strings.Contains("postgres://app:xxxxx@db/app", pass) {
			return
		}
		if got := MaskString("postgres://app:" + pass + "@db/app"); strings.Contains(got, pass) {
			t.Errorf("password %q shows in %q", pass, got)
		}
	})
}
