package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The plan change feed (GET /Flag/_history) as an LA system polls it.

// historyPage is one page of the feed: the plan versions, the request of
// each entry, its next link and its meta.lastUpdated.
type historyPage struct {
	versions []string // id/_history/version of each entry
	methods  []string
	next     string // a path, "" on the last page
	horizon  string
}

func (ts *testServer) history(persona, query string) historyPage {
	ts.t.Helper()
	res := ts.as(persona, "GET", "/Flag/_history"+query, nil)
	mustStatus(ts.t, res, http.StatusOK)
	m := res.JSON(ts.t)
	if m["type"] != "history" {
		ts.t.Fatalf("a %v Bundle, want history", m["type"])
	}
	var p historyPage
	es, _ := m["entry"].([]any)
	for _, e := range es {
		p.versions = append(p.versions, str(e, "resource", "id")+"/_history/"+str(e, "resource", "meta", "versionId"))
		p.methods = append(p.methods, str(e, "request", "method"))
	}
	if next := link(ts.t, res, "next"); next != "" {
		p.next = strings.TrimPrefix(next, ts.URL+"/Flag/_history")
	}
	p.horizon = str(m, "meta", "lastUpdated")
	return p
}

func TestPlanChangeFeed(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			flag := example(t, "flag-cpp.json")
			id := ts.create(la, flag)
			ts.setClock(startDay.Add(time.Minute))
			mustStatus(t, ts.as(la, "PUT", "/Flag/"+id, edit(t, flag, func(m map[string]any) { m["id"] = id; setPhone("020 7946 0999")(m) }), "If-Match", `W/"1"`), http.StatusOK)
			ts.create("la:ZLA02", edit(t, example(t, "flag-cla.json"), setAuthor("ZLA02", "")))
			ts.setClock(startDay.Add(2 * time.Minute))
			mustStatus(t, ts.as(la, "DELETE", "/Flag/"+id, nil), http.StatusNoContent)

			all := ts.history(la, "")
			want := []string{id + "/_history/1", id + "/_history/2", id + "/_history/3"}
			if strings.Join(all.versions, " ") != strings.Join(want, " ") {
				t.Fatalf("the feed holds %v, want %v (the other LA's plan left out)", all.versions, want)
			}
			if got := strings.Join(all.methods, " "); got != "POST PUT DELETE" {
				t.Errorf("requests %s, want POST PUT DELETE", got)
			}
			if all.next != "" || all.horizon == "" {
				t.Fatalf("a complete page has next %q and meta.lastUpdated %q", all.next, all.horizon)
			}

			// Page by page, by next links, the same three once each.
			var paged []string
			p := ts.history(la, "?_count=1")
			if p.horizon != "" {
				t.Errorf("a page with more after it gives a poll start, %s: a poll from there would skip the rest", p.horizon)
			}
			for pages := 1; ; pages++ {
				paged = append(paged, p.versions...)
				if p.next == "" || pages > 5 {
					break
				}
				p = ts.history(la, p.next)
			}
			if strings.Join(paged, " ") != strings.Join(want, " ") {
				t.Errorf("following next links gave %v, want %v", paged, want)
			}
			if p.horizon != all.horizon {
				t.Errorf("the last page's meta.lastUpdated %q, the whole feed's %q", p.horizon, all.horizon)
			}

			// Polling from the horizon: nothing, then exactly what commits
			// after, even from a writer whose clock is behind.
			since := "?_since=" + url.QueryEscape(all.horizon)
			if got := ts.history(la, since).versions; len(got) != 0 {
				t.Errorf("a poll from the horizon repeats %v", got)
			}
			ts.setClock(startDay.Add(-time.Hour))
			late := ts.create(la, edit(t, example(t, "flag-cla.json"), setSubject("9990276579")))
			got := ts.history(la, since)
			if strings.Join(got.versions, " ") != late+"/_history/1" {
				t.Errorf("the poll after one more write gave %v, want only %s", got.versions, late)
			}
			if got.horizon <= all.horizon {
				t.Errorf("the horizon went from %s to %s", all.horizon, got.horizon)
			}

			for _, p := range []string{"ed-clinician", "community-nurse", "auditor"} {
				mustStatus(t, ts.as(p, "GET", "/Flag/_history", nil), http.StatusForbidden)
			}
			mustStatus(t, ts.as(la, "GET", "/Flag/_history?_since=yesterday", nil), http.StatusBadRequest)
		})
	}
}

func TestEventSettings(t *testing.T) {
	cfg, err := loadConfig(nil, func(string) string { return "" })
	if err != nil || cfg.ASNCoalesceWindow != 24*time.Hour || cfg.EventRetentionDays != 0 {
		t.Fatalf("defaults: window %v, retention %d days, %v", cfg.ASNCoalesceWindow, cfg.EventRetentionDays, err)
	}
	env := map[string]string{"CPIS_ASN_COALESCE_WINDOW": "0", "CPIS_EVENT_RETENTION_DAYS": "90"}
	if cfg, err = loadConfig(nil, func(k string) string { return env[k] }); err != nil || cfg.ASNCoalesceWindow != 0 || cfg.EventRetentionDays != 90 {
		t.Errorf("set: window %v, retention %d, %v", cfg.ASNCoalesceWindow, cfg.EventRetentionDays, err)
	}
	for _, bad := range []map[string]string{{"CPIS_ASN_COALESCE_WINDOW": "a day"}, {"CPIS_ASN_COALESCE_WINDOW": "-1h"},
		{"CPIS_EVENT_RETENTION_DAYS": "-1"}, {"CPIS_EVENT_RETENTION_DAYS": "ninety"}} {
		if _, err := loadConfig(nil, func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestEventRetention runs the server's upkeep on its injected clock: events
// older than the retention leave the feed, the plans and their AuditEvents
// stay.
func TestEventRetention(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t), func(c *Config) { c.EventRetentionDays = 30 })
			old := ts.create(la, example(t, "flag-cpp.json"))
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+old, nil), http.StatusOK)
			ts.setClock(startDay.AddDate(0, 0, 20))
			recent := ts.create(la, example(t, "flag-cla.json"))
			ts.setClock(startDay.AddDate(0, 0, 31))
			if err := ts.srv.upkeep(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := ts.history(la, "").versions; strings.Join(got, " ") != recent+"/_history/1" {
				t.Errorf("after retention the feed holds %v, want only %s", got, recent)
			}
			if n := len(ts.communications(la)); n != 0 {
				t.Errorf("%d ASNs older than the retention are left", n)
			}
			mustStatus(t, ts.as(la, "GET", "/Flag/"+old, nil), http.StatusOK)
			if n := len(ts.accessEventIDs(old)); n != 1 {
				t.Errorf("retention of events took the AuditEvent of the access: %d left", n)
			}
		})
	}
}
