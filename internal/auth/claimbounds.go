package auth

import (
	"errors"
	"unicode"
	"unicode/utf8"
)

// Bounds of the identity claims. Names, role names and organisation names
// reach other readers (the access history of a child's plan shows who looked
// and from where), so they must be plain text of a sane length: no control
// characters that could forge lines in a log or a report, and no
// bidirectional controls that could make one name display as another.
const (
	maxNameRunes = 200 // a person's, role's, organisation's or LA's name
	maxCodeRunes = 64  // an id or code: sub, SDS ids, ODS and role codes, client ids
)

// errDisplayClaim is the reason given for a token refused by checkBounds.
// Like every reason, it says nothing of the token's content.
var errDisplayClaim = errors.New("the token's identity claims are malformed: a name, id or code is too long or holds control characters")

// checkBounds refuses claims whose names, ids or codes are too long or hold
// control characters. Every role and organisation of the token is checked,
// not only the selected one: the token is refused as a whole.
func (c *claims) checkBounds() error {
	names := []string{c.Name, c.LAName, c.OrgName}
	codes := []string{c.Subject, c.UserUID, c.SelectedRoleID, string(c.IDAssurance), c.LACode, c.ClientID, c.AZP, c.ODSCode}
	codes = append(codes, c.Activities...)
	for _, r := range c.Roles {
		names = append(names, r.RoleName)
		codes = append(codes, r.PersonRoleID, r.OrgCode, r.RoleCode)
		codes = append(codes, r.ActivityCodes...)
	}
	for _, o := range c.Orgs {
		names = append(names, o.OrgName)
		codes = append(codes, o.OrgCode)
	}
	for _, s := range names {
		if !plainText(s, maxNameRunes) {
			return errDisplayClaim
		}
	}
	for _, s := range codes {
		if !plainText(s, maxCodeRunes) {
			return errDisplayClaim
		}
	}
	return nil
}

// plainText reports whether s is valid UTF-8 of at most maxRunes runes with
// no control character (C0, DEL, C1), line or paragraph separator, or
// Unicode bidirectional control.
func plainText(s string, maxRunes int) bool {
	if len(s) > maxRunes*utf8.UTFMax || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxRunes {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// isBidiControl reports whether r is one of the Unicode bidirectional
// formatting characters (Unicode Standard Annex #9, table 2): the marks
// ALM, LRM and RLM, the embeddings and overrides LRE, RLE, PDF, LRO, RLO,
// and the isolates LRI, RLI, FSI, PDI.
func isBidiControl(r rune) bool {
	switch {
	case r == '\u061C', r == '\u200E', r == '\u200F':
		return true
	case r >= '\u202A' && r <= '\u202E':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
