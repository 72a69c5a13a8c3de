package search

import (
	"net/url"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// historyBases are the parameters of the plan feed in any form.
var historyBases = []string{"_since", "_count", "_cursor"}

// ParseFlagHistory reads the parameters of GET /Flag/_history, the plan
// feed, into a query of the event log, with warnings and errors as
// ParseFlagSearch. The query has Kind store.PlanChanged, Order OldestFirst
// (the feed is read in commit order, so a poller never skips a change),
// Limit (default DefaultFlagCount, at most MaxCount), From from _since
// (inclusive, as FHIR defines it), and After when the page continues from
// a next link's _cursor. LACode is left for the caller.
func ParseFlagHistory(v url.Values, strict bool) (store.EventQuery, []*cpis.Error, error) {
	p := &parser{op: "search.ParseFlagHistory", strict: strict}
	q := store.EventQuery{Kind: store.PlanChanged, Order: store.OldestFirst, Limit: DefaultFlagCount}
	p.run(v, func(p *parser, name, _ string, values []string) bool {
		switch name {
		case "_since":
			q.From = p.since(name, values)
		case "_count":
			q.Limit = p.count(name, values, DefaultFlagCount)
		case "_cursor":
			if k, ok := p.eventCursor(name, values, historyCursor); ok {
				q.After = k
			}
		default:
			return false
		}
		return true
	}, historyBases...)
	if err := p.err(); err != nil {
		return store.EventQuery{}, p.warnings, err
	}
	return q, p.warnings, nil
}

// since reads _since: one FHIR instant, to the second at least and with a
// time zone. Unlike a search's dates it is a point, not a range, so a date
// or a time without seconds is refused rather than widened: a poller that
// asks from a day would be given again what it has already seen.
func (p *parser) since(name string, values []string) time.Time {
	s, ok := p.single(name, values)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case !dateTimeRE.MatchString(s) || err != nil:
		p.fail(cpis.InvalidSearch, name, "_since must be an instant with seconds and a time zone, such as the meta.lastUpdated of an earlier page")
	case !t.After(time.Time{}) || t.After(maxInstant):
		p.fail(cpis.InvalidSearch, name, "_since is outside the years 0001 to 9999")
	default:
		return t.UTC()
	}
	return time.Time{}
}

// EncodeFlagHistory writes q as the canonical query string of a link of the
// plan feed: what ParseFlagHistory reads back into q. For a next link the
// api sets After to the key of the page's last event: it is written as
// _cursor. Kind, Order and LACode are not part of a link.
func EncodeFlagHistory(q store.EventQuery) url.Values {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("_since", formatBound(q.From))
	}
	encodeCount(v, q.Limit)
	if q.After != nil {
		v.Set("_cursor", eventCursorOf(historyCursor, *q.After))
	}
	return v
}
