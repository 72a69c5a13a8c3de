package cpis

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Authorities is the register of local authorities the service knows: each
// LA's code and the name readers are shown. The server owns LA names: a
// plan names its LA by code, which must be in the register, and is always
// shown with the register's name, never with text a client sent. In
// production the register is the national list (153 LAs in England), read
// from a file; in dev mode it is the Trust's directory.
type Authorities struct {
	byCode map[string]LocalAuthority
}

// laCode is what an LA's ODS code looks like.
var laCode = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)

// MaxLANameLength bounds an LA's name in the register.
const MaxLANameLength = 100

// NewAuthorities builds a register from las. Every code must look like an
// ODS code and appear once; every name must be SafeText of at most
// MaxLANameLength characters.
func NewAuthorities(las []LocalAuthority) (*Authorities, error) {
	const op = "cpis.NewAuthorities"
	a := &Authorities{byCode: make(map[string]LocalAuthority, len(las))}
	for i, la := range las {
		switch {
		case !laCode.MatchString(la.Code):
			return nil, E(op, Invalid, fmt.Sprintf("entry %d: the code must be 3 to 10 capital letters or digits", i+1))
		case la.Name == "" || !SafeText(la.Name, MaxLANameLength):
			return nil, E(op, Invalid, fmt.Sprintf("entry %d (%s): the name must be 1 to %d characters, with no control or bidirectional characters", i+1, la.Code, MaxLANameLength))
		}
		if _, dup := a.byCode[la.Code]; dup {
			return nil, E(op, Invalid, fmt.Sprintf("entry %d: code %s appears twice", i+1, la.Code))
		}
		a.byCode[la.Code] = la
	}
	if len(a.byCode) == 0 {
		return nil, E(op, Invalid, "the register of local authorities is empty")
	}
	return a, nil
}

// ReadAuthorities reads a register from CSV: a header row "code,name", then
// one row per local authority.
func ReadAuthorities(r io.Reader) (*Authorities, error) {
	const op = "cpis.ReadAuthorities"
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2
	rows, err := cr.ReadAll()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, E(op, Invalid, fmt.Sprintf("line %d: not a CSV row of two fields, code and name", pe.Line))
		}
		return nil, E(op, Invalid, "the register cannot be read", err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], []string{"code", "name"}) {
		return nil, E(op, Invalid, `the first line must be the header "code,name"`)
	}
	las := make([]LocalAuthority, 0, len(rows)-1)
	for _, row := range rows[1:] {
		las = append(las, LocalAuthority{Code: strings.TrimSpace(row[0]), Name: strings.TrimSpace(row[1])})
	}
	return NewAuthorities(las)
}

// OutOfAreaDevLA is an LA of the dev register that is not in the Trust's
// directory: its plans are those of an out-of-area child, whom staff call
// on the plan's own numbers (SOP section 7). Fictional, like the others.
var OutOfAreaDevLA = LocalAuthority{Code: "ZLA90", Name: "Fictional Northshire County Council"}

// DevAuthorities is the register of dev mode: the Trust's directory and
// one LA from outside the Trust's area (OutOfAreaDevLA).
func DevAuthorities() *Authorities {
	dir := TrustDirectory()
	las := make([]LocalAuthority, 0, len(dir)+1)
	for _, e := range dir {
		las = append(las, e.LocalAuthority)
	}
	a, err := NewAuthorities(append(las, OutOfAreaDevLA))
	if err != nil {
		panic(err) // the directory is a literal, checked by its test
	}
	return a
}

// Lookup returns the LA with the given code, if the register holds it.
func (a *Authorities) Lookup(code string) (LocalAuthority, bool) {
	la, ok := a.byCode[code]
	return la, ok
}

// Len is how many LAs the register holds.
func (a *Authorities) Len() int { return len(a.byCode) }
