//go:build linux

package experiment

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// spillwayDrops sums get_status's workers and refuses an answer without
// them, such as a wrong secret's error.
func TestSpillwayDrops(t *testing.T) {
	answer := `{"janus":"success","transaction":"bench","status":{"sessions":3,"dataplane":{"mode":"queue",
		"workers":[{"cpu":1,"late_drops":7,"queue_drops":1,"errors":2},{"cpu":2,"late_drops":5,"queue_drops":0,"errors":1}]}}}`
	var gotSecret bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotSecret = strings.Contains(string(b), `"admin_secret":"`+spillwayAdminSecret+`"`) && strings.Contains(string(b), `"get_status"`)
		if !gotSecret {
			io.WriteString(w, `{"janus":"error","error":{"code":403,"reason":"Unauthorized request (wrong or missing secret/token)"}}`)
			return
		}
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	d, err := spillwayDrops(context.Background(), srv.URL)
	if err != nil || d != (drops{late: 12, queue: 1, refused: 3}) || !gotSecret {
		t.Fatalf("%+v, err %v (secret sent: %v), want 12 late, 1 queue, 3 refused", d, err, gotSecret)
	}
	answer = `{"janus":"success","transaction":"bench","status":{"sessions":3}}`
	if _, err := spillwayDrops(context.Background(), srv.URL); err == nil {
		t.Fatal("a status without data-plane workers gave no error")
	}
}
