package cpis

import (
	"unicode"
	"unicode/utf8"
)

// SafeText reports whether s may be shown to a reader as it is: valid UTF-8,
// at most max characters, with no control characters and no Unicode
// bidirectional controls (which can make text display as something other
// than what it holds, e.g. reverse a telephone number), and without
// surrounding spaces. Every free string that can reach a reader is checked
// with it, or comes from a fixed vocabulary.
func SafeText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for i, r := range s {
		if unicode.IsControl(r) || bidiControl(r) || r == utf8.RuneError {
			return false
		}
		if unicode.IsSpace(r) && (i == 0 || i+utf8.RuneLen(r) == len(s)) {
			return false
		}
	}
	return true
}

// bidiControl reports whether r is one of Unicode's bidirectional formatting
// characters: the embeddings and overrides, the isolates and the marks.
func bidiControl(r rune) bool {
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	}
	return false
}
