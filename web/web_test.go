package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		ctype        string
		contains     []string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", []string{
			`<video id="video" autoplay muted playsinline>`, `id="stop"`, `src="app.js"`, `href="style.css"`,
		}},
		{"HEAD", "/", 200, "text/html; charset=utf-8", nil},
		{"GET", "/app.js", 200, "text/javascript; charset=utf-8", []string{
			"window.spillwayStats", "window.spillwayState", "`watch-${m.id}`", "janus.plugin.streaming",
			"maxev=10", "request: 'watch'", "request: 'start'", "request: 'stop'", "request: 'list'",
			"janus: 'trickle'", "completed: true", "janus: 'keepalive'", "getStats",
		}},
		{"GET", "/style.css", 200, "text/css; charset=utf-8", []string{"video"}},
		{"GET", "/index.html", http.StatusMovedPermanently, "", nil}, // to "./", as http.FileServer does
		{"GET", "/nope.js", 404, "", nil},
		{"POST", "/", http.StatusMethodNotAllowed, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if tt.ctype != "" {
				if ct := res.Header.Get("Content-Type"); ct != tt.ctype {
					t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
				}
				if res.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Error("no nosniff header")
				}
			}
			for _, s := range tt.contains {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q", s)
				}
			}
		})
	}
}

// The page must work offline and leak nothing: no absolute or
// protocol-relative URL, no CSS import or url().
func TestNoExternalReferences(t *testing.T) {
	bad := regexp.MustCompile(`(?i)(https?:|wss?:|ftp:)//|(src|href|action)\s*=\s*["']?//|@import|url\(`)
	n := 0
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := bad.FindString(line); m != "" {
				t.Errorf("%s:%d: %q references another place: %s", p, i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d files embedded, want index.html, app.js, style.css", n)
	}
}

func TestJavaScriptParses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed (Debian package nodejs): cannot check app.js syntax")
	}
	out, err := exec.Command(node, "--check", "static/app.js").CombinedOutput()
	if err != nil {
		t.Fatalf("node --check static/app.js: %v\n%s", err, out)
	}
}
