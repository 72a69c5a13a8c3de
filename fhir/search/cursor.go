package search

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"regexp"
	"strconv"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// A cursor is the value of _cursor in a next link: where the next page of a
// search starts, so that following next links neither skips nor repeats a
// result when the register changes between pages (store.PlanQuery.After and
// AsOf, store.AuditQuery.Before). It is opaque to clients and made only by
// this server; it is not secret and not signed: what a client could put in
// one (an earlier instant, another starting point) shows nothing its
// search could not show it anyway.
//
// Form 1, base64url without padding of:
//
//	byte 0     1, the form
//	byte 1     'F' in a Flag search, 'A' in an AuditEvent search, 'C' in a
//	           Communication search, 'H' in the plan feed (GET /Flag/_history)
//	8 bytes    (Flag only) AsOf, microseconds since the Unix epoch, big-endian; 0 for none
//	8 bytes    the key's instant (last update, time recorded, or an event's
//	           stamp on the feed), the same way
//	the rest   the key's id: 1 to 64 of A-Z a-z 0-9 . - (a FHIR id); for
//	           'C' and 'H', the event's position in the log in decimal, with
//	           no leading zero (store.EventKey)
//
// Instants are whole microseconds from 1970 to the end of 9999, the
// precision the stores keep. Each cursor has one encoding: the decoder
// refuses anything that would not encode back to the same text.
type cursor struct {
	asOf time.Time // zero: the current register
	at   time.Time
	id   string
}

// The kinds of cursor: one search's cursor is refused by another.
const (
	flagCursor          byte = 'F'
	auditCursor         byte = 'A'
	communicationCursor byte = 'C'
	historyCursor       byte = 'H'
)

const (
	cursorForm  = 1
	maxCursorID = 64
	// maxCursorLen is the longest _cursor text, checked before decoding.
	maxCursorLen = (2 + 8 + 8 + maxCursorID + 2) / 3 * 4
)

// cursorID is what the id of a key may be, cursorPosition what the id of
// an event's key may be (a positive int64, written one way only);
// base64URL is the alphabet of a cursor.
var (
	cursorID       = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)
	cursorPosition = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)
	base64URL      = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)
)

// lastMicro is the last microsecond a cursor may hold: the end of 9999.
var lastMicro = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()

// encode writes c as the _cursor of a search of kind.
func (c cursor) encode(kind byte) string {
	b := make([]byte, 0, 2+8+8+len(c.id))
	b = append(b, cursorForm, kind)
	if kind == flagCursor {
		var asOf int64
		if !c.asOf.IsZero() {
			asOf = c.asOf.UnixMicro()
		}
		b = binary.BigEndian.AppendUint64(b, uint64(asOf))
	}
	b = binary.BigEndian.AppendUint64(b, uint64(c.at.UnixMicro()))
	b = append(b, c.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errCursor is every decoding failure: a client can only follow the link
// it was given, so there is nothing more to tell it.
var errCursor = errors.New("not a cursor this server made for this search")

// decodeCursor reads the _cursor of a search of kind.
func decodeCursor(kind byte, s string) (cursor, error) {
	// The alphabet is checked first: the base64 decoder skips newlines.
	if len(s) > maxCursorLen || !base64URL.MatchString(s) {
		return cursor{}, errCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != cursorForm || b[1] != kind {
		return cursor{}, errCursor
	}
	b = b[2:]
	var c cursor
	if kind == flagCursor {
		if len(b) < 8 {
			return cursor{}, errCursor
		}
		asOf := int64(binary.BigEndian.Uint64(b))
		if asOf != 0 {
			if c.asOf, err = cursorTime(asOf); err != nil {
				return cursor{}, err
			}
		}
		b = b[8:]
	}
	if len(b) < 8 {
		return cursor{}, errCursor
	}
	if c.at, err = cursorTime(int64(binary.BigEndian.Uint64(b))); err != nil {
		return cursor{}, err
	}
	if c.id = string(b[8:]); !cursorID.MatchString(c.id) {
		return cursor{}, errCursor
	}
	if isEventCursor(kind) {
		if _, ok := positionOf(c.id); !ok {
			return cursor{}, errCursor
		}
	}
	return c, nil
}

// isEventCursor reports whether kind's key is an event's (stamp, position).
func isEventCursor(kind byte) bool { return kind == communicationCursor || kind == historyCursor }

// positionOf reads an event cursor's id as a position.
func positionOf(id string) (int64, bool) {
	if !cursorPosition.MatchString(id) {
		return 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil
}

// cursorTime is the instant of us microseconds since the epoch, if a
// cursor may hold it.
func cursorTime(us int64) (time.Time, error) {
	if us < 0 || us > lastMicro {
		return time.Time{}, errCursor
	}
	return time.UnixMicro(us).UTC(), nil
}

// cursor reads the one value of _cursor, of a search of kind.
func (p *parser) cursor(name string, values []string, kind byte) (cursor, bool) {
	s, ok := p.single(name, values)
	if !ok {
		return cursor{}, false
	}
	c, err := decodeCursor(kind, s)
	if err != nil {
		p.fail(cpis.InvalidSearch, name, "_cursor is "+err.Error()+": follow the next link as it was given")
		return cursor{}, false
	}
	return c, true
}

// eventCursor reads the one value of _cursor of a search of the event log
// (kind communicationCursor or historyCursor) as the key it continues after.
func (p *parser) eventCursor(name string, values []string, kind byte) (*store.EventKey, bool) {
	c, ok := p.cursor(name, values, kind)
	if !ok {
		return nil, false
	}
	pos, _ := positionOf(c.id) // decodeCursor checked it
	return &store.EventKey{Stamp: c.at, Position: pos}, true
}

// eventCursorOf is the _cursor of a search of kind that continues after k.
func eventCursorOf(kind byte, k store.EventKey) string {
	return cursor{at: k.Stamp, id: strconv.FormatInt(k.Position, 10)}.encode(kind)
}

// planCursor is the _cursor of a Flag search that continues after q.After,
// as of q.AsOf.
func planCursor(q store.PlanQuery) string {
	return cursor{asOf: q.AsOf, at: q.After.LastUpdated, id: q.After.ID}.encode(flagCursor)
}

// auditCursorOf is the _cursor of an AuditEvent search that continues
// before q.Before.
func auditCursorOf(q store.AuditQuery) string {
	return cursor{at: q.Before.Recorded, id: q.Before.ID}.encode(auditCursor)
}
