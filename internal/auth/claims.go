package auth

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// claims are the token claims this service reads beyond the registered ones
// (iss, aud, exp ...), which jwx checks. Names follow CIS2 for health users
// (docs/domain.md, CIS2 claims); la_code and la_name mark a local authority's
// system.
type claims struct {
	Subject        string     `json:"sub,omitempty"`
	Name           string     `json:"name,omitempty"`
	UserUID        string     `json:"nhsid_useruid,omitempty"`
	SelectedRoleID string     `json:"selected_roleid,omitempty"`
	Roles          []cis2Role `json:"nhsid_nrbac_roles,omitempty"`
	Orgs           []cis2Org  `json:"nhsid_user_orgs,omitempty"`
	IDAssurance    flexString `json:"id_assurance_level,omitempty"`
	LACode         string     `json:"la_code,omitempty"`
	LAName         string     `json:"la_name,omitempty"`
	ClientID       string     `json:"client_id,omitempty"`
	AZP            string     `json:"azp,omitempty"`
	Scope          scopeList  `json:"scope,omitempty"`
	SCP            scopeList  `json:"scp,omitempty"`
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
// la_code is a local authority's system; any other is a health user.
func (c *claims) principal() *Principal {
	p := &Principal{Subject: c.Subject, Scopes: c.scopes()}
	if c.LACode != "" {
		c.laSystem(p)
	} else {
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
