package auth

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// claims are the token claims this service reads beyond the registered ones
// (iss, aud, exp ...), which jwx checks. Names follow CIS2 for health users
// (docs/domain.md, CIS2 claims); la_code and la_name mark a local authority's
// system.
type claims struct {
	Subject        string
	Name           string
	UserUID        string
	SelectedRoleID string
	Roles          []cis2Role
	Orgs           []cis2Org
	IDAssurance    flexString
	LACode         string
	LAName         string
	ODSCode        string
	OrgName        string
	Activities     []string
	ClientID       string
	AZP            string
	Scope          scopeList
	SCP            scopeList
}

// privateClaim is one claim of claims: its name in the token, the type jwx
// decodes it into (registered with jwt.WithTypedClaim) and where it goes.
type privateClaim struct {
	name   string
	typ    any
	assign func(c *claims, v any) bool // false when the value was not of the claim's type
}

// claimOf describes the private claim name, decoded as a T into *field(c).
func claimOf[T any](name string, field func(c *claims) *T) privateClaim {
	return privateClaim{name: name, typ: lenient[T]{}, assign: func(c *claims, v any) bool {
		l, ok := v.(lenient[T])
		if ok && l.ok {
			*field(c) = l.v
		}
		return ok && l.ok
	}}
}

// privateClaims are the claims read besides the registered ones.
var privateClaims = []privateClaim{
	claimOf("name", func(c *claims) *string { return &c.Name }),
	claimOf("nhsid_useruid", func(c *claims) *string { return &c.UserUID }),
	claimOf("selected_roleid", func(c *claims) *string { return &c.SelectedRoleID }),
	claimOf("nhsid_nrbac_roles", func(c *claims) *[]cis2Role { return &c.Roles }),
	claimOf("nhsid_user_orgs", func(c *claims) *[]cis2Org { return &c.Orgs }),
	claimOf("id_assurance_level", func(c *claims) *flexString { return &c.IDAssurance }),
	claimOf("la_code", func(c *claims) *string { return &c.LACode }),
	claimOf("la_name", func(c *claims) *string { return &c.LAName }),
	claimOf("ods_code", func(c *claims) *string { return &c.ODSCode }),
	claimOf("org_name", func(c *claims) *string { return &c.OrgName }),
	claimOf("activity_codes", func(c *claims) *[]string { return &c.Activities }),
	claimOf("client_id", func(c *claims) *string { return &c.ClientID }),
	claimOf("azp", func(c *claims) *string { return &c.AZP }),
	claimOf("scope", func(c *claims) *scopeList { return &c.Scope }),
	claimOf("scp", func(c *claims) *scopeList { return &c.SCP }),
}

// typedClaimOptions register privateClaims with jwt.Parse, so that the one
// parse of a token decodes them into their types.
func typedClaimOptions() []jwt.ParseOption {
	opts := make([]jwt.ParseOption, 0, len(privateClaims))
	for _, pc := range privateClaims {
		opts = append(opts, jwt.WithTypedClaim(pc.name, pc.typ))
	}
	return opts
}

// claimsOf reads the private claims of a parsed token. It reports false if
// one of them did not have its type (say, a number for la_code).
func claimsOf(tok jwt.Token) (*claims, bool) {
	c := &claims{Subject: tok.Subject()}
	for _, pc := range privateClaims {
		if v, ok := tok.Get(pc.name); ok && !pc.assign(c, v) {
			return nil, false
		}
	}
	return c, true
}

// lenient decodes a T and never fails on well-formed JSON: a value of
// another type leaves ok false. jwx then carries on with the next claim
// instead of failing the whole parse, and claimsOf tells a malformed
// identity claim from a malformed registered one.
type lenient[T any] struct {
	v  T
	ok bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *lenient[T]) UnmarshalJSON(b []byte) error {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		*l = lenient[T]{}
		return nil
	}
	*l = lenient[T]{v: v, ok: true}
	return nil
}

// cis2Role is one entry of nhsid_nrbac_roles: a role the user holds in one organisation.
type cis2Role struct {
	PersonRoleID  string   `json:"person_roleid"`
	OrgCode       string   `json:"org_code"`
	RoleCode      string   `json:"role_code"`
	RoleName      string   `json:"role_name"`
	ActivityCodes []string `json:"activity_codes"`
}

// cis2Org is one entry of nhsid_user_orgs.
type cis2Org struct {
	OrgCode string `json:"org_code"`
	OrgName string `json:"org_name"`
}

// flexString accepts a JSON string or number: issuers differ on how they
// send id_assurance_level.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' && !bytes.Equal(b, []byte("null")) {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n)
		return nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	*f = flexString(s)
	return err
}

// scopeList accepts scopes as one space-separated string (OAuth's "scope")
// or as an array of strings (the "scp" of some issuers); either claim may
// come in either form.
type scopeList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *scopeList) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var a []string
		err := json.Unmarshal(b, &a)
		*l = a
		return err
	}
	var s string
	err := json.Unmarshal(b, &s)
	*l = strings.Fields(s)
	return err
}

// principal maps verified claims to the caller. A token with a non-empty
// la_code is a local authority's system; one with ods_code and no CIS2
// identity (nhsid_useruid, selected_roleid) is a health organisation's
// system; any other is a health user.
func (c *claims) principal() *Principal {
	p := &Principal{Subject: c.Subject, Scopes: c.scopes()}
	switch {
	case c.LACode != "":
		c.laSystem(p)
	case c.ODSCode != "" && c.UserUID == "" && c.SelectedRoleID == "":
		c.healthSystem(p)
	default:
		c.healthUser(p)
	}
	return p
}

func (c *claims) scopes() []string {
	if len(c.Scope) > 0 {
		return []string(c.Scope)
	}
	return []string(c.SCP)
}

func (c *claims) laSystem(p *Principal) {
	p.ClientID = firstNonEmpty(c.ClientID, c.AZP, c.Subject)
	p.LACode = c.LACode
	p.Actor = cpis.Actor{
		Kind:    cpis.LASystem,
		UserID:  p.ClientID,
		Name:    firstNonEmpty(c.LAName, p.ClientID),
		OrgCode: c.LACode,
		OrgName: c.LAName,
	}
}

// healthSystem fills in a health organisation's system: its client id,
// organisation and the NHS activities its owner granted it (activity_codes),
// which stand in for a user's selected role.
func (c *claims) healthSystem(p *Principal) {
	p.ClientID = firstNonEmpty(c.ClientID, c.AZP, c.Subject)
	p.Actor = cpis.Actor{
		Kind:       cpis.HealthSystem,
		UserID:     p.ClientID,
		Name:       firstNonEmpty(c.Name, p.ClientID),
		OrgCode:    c.ODSCode,
		OrgName:    c.OrgName,
		Activities: append([]string(nil), c.Activities...),
	}
}

// healthUser fills in the CIS2 identity. When selected_roleid is missing or
// names none of the user's roles, the principal has no role, organisation or
// activities: it is authenticated, and every authorisation check refuses it.
func (c *claims) healthUser(p *Principal) {
	p.ClientID = firstNonEmpty(c.ClientID, c.AZP)
	p.IdentityAssurance = string(c.IDAssurance)
	p.Actor = cpis.Actor{
		Kind:          cpis.HealthUser,
		UserID:        c.UserUID,
		Name:          c.Name,
		RoleProfileID: c.SelectedRoleID,
	}
	role, ok := c.selectedRole()
	if !ok {
		return
	}
	p.RoleCode = role.RoleCode
	p.RoleName = role.RoleName
	p.OrgCode = role.OrgCode
	p.OrgName = c.orgName(role.OrgCode)
	p.Activities = append([]string(nil), role.ActivityCodes...)
}

func (c *claims) selectedRole() (cis2Role, bool) {
	if c.SelectedRoleID == "" {
		return cis2Role{}, false
	}
	for _, r := range c.Roles {
		if r.PersonRoleID == c.SelectedRoleID {
			return r, true
		}
	}
	return cis2Role{}, false
}

func (c *claims) orgName(code string) string {
	for _, o := range c.Orgs {
		if o.OrgCode == code {
			return o.OrgName
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
