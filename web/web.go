// Package web serves Spillway's demo page: a plain-JS Janus client for the
// Streaming plugin (list, watch, play, stats), embedded in the binary.
//
// The server mounts Handler at "/" of the HTTP API port, next to "/janus",
// so the page talks to the Janus API at its own origin. The page loads
// nothing from anywhere else.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

//go:embed static
var static embed.FS

// contentTypes are set here rather than left to the mime package, whose
// answers depend on the host's /etc/mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// Handler serves the demo page: index.html at "/", app.js, style.css.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ext := path.Ext(r.URL.Path)
		if r.URL.Path == "/" || r.URL.Path == "" {
			ext = ".html"
		}
		h := w.Header()
		if ct, ok := contentTypes[ext]; ok {
			h.Set("Content-Type", ct)
		}
		// A demo page changes with the binary: always revalidate.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
