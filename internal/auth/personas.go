package auth

import (
	"slices"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Persona is a fictional identity the development issuer can mint tokens
// for, as GET /dev/personas lists it.
type Persona struct {
	Name        string         `json:"name"` // what to ask Token for, e.g. "ed-clinician" or "la:ZLA01"
	Description string         `json:"description"`
	Kind        cpis.ActorKind `json:"kind"`
	UserID      string         `json:"userId"`      // SDS user id, or the LA system's client id
	DisplayName string         `json:"displayName"` // the person's name, or the LA's
	// Role fields are set for health users only.
	RoleProfileID string   `json:"roleProfileId,omitempty"`
	RoleCode      string   `json:"roleCode,omitempty"`
	RoleName      string   `json:"roleName,omitempty"`
	OrgCode       string   `json:"orgCode"` // ODS code, or the LA code
	OrgName       string   `json:"orgName"`
	Activities    []string `json:"activities"`
	Scopes        []string `json:"scopes"`
}

// The development organisation is fictional, like the LA codes in
// cpis.TrustDirectory: nothing minted here can be mistaken for a real
// trust's audit trail.
const (
	devOrgCode  = "ZZT01"
	devOrgName  = "Fictional Community and Acute NHS Trust"
	devClientID = "cpis-dev-ehr" // the EPR the health personas sign in through
)

// Scopes of the development personas.
var (
	clinicianScopes = []string{"openid", "profile", "user/Flag.read"}
	auditorScopes   = []string{"openid", "user/AuditEvent.read"}
	// deskScopes are the front desk EPR client's: it was granted the audit
	// scope too, which must not open the audit trail to a role that is not
	// an auditing one.
	deskScopes = []string{"openid", "profile", "user/Flag.read", "user/AuditEvent.read"}
	laScopes   = []string{"system/Flag.write", "system/Flag.read", "system/Communication.read", "system/Subscription.cruds"}
	// safeguardingScopes are the safeguarding team's: they view CP-IS, and
	// read and resolve the discrepancy reports sent to the team.
	safeguardingScopes = []string{"openid", "profile", "user/Flag.read", "user/Communication.rs"}
	// trustSystemScopes are the Trust's interface engine's: it reads plans
	// (scheduled care) and watches the children open to the Trust.
	trustSystemScopes = []string{"system/Flag.rs", "system/Subscription.cruds"}
)

// The Trust's interface engine, a system of the development organisation.
const (
	trustSystemClientID = "cpis-dev-trust-engine"
	trustSystemName     = "Fictional Trust interface engine"
)

// devPersonas are the six health users of one fictional trust and its
// interface engine, then one system per LA of the Trust directory. People and SDS ids are invented
// (555 prefix); role codes and names are national RBAC ones, but for the
// safeguarding lead's.
func devPersonas() []Persona {
	health := []Persona{
		healthPersona("ed-clinician", "Emergency department doctor: unscheduled care, reads send an ASN to the LA (B0107)",
			"555000000001", "Dr Ada Testwell", "555000000101", "S8000:G8000:R8000", "Clinical Practitioner Access Role",
			[]string{cpis.ActivityUnscheduledView}, clinicianScopes),
		healthPersona("community-nurse", "Community nurse: scheduled care, reads send no ASN (B0170)",
			"555000000002", "Nurse Bea Fictional", "555000000102", "S8000:G8000:R8001", "Nurse Access Role",
			[]string{cpis.ActivityScheduledView}, clinicianScopes),
		healthPersona("receptionist", "Receptionist: signed in through a client granted the audit scope, but the role has no CP-IS activity and is not an auditing role (expect 403)",
			"555000000003", "Cal Placeholder", "555000000103", "S8000:G8000:R8009", "Receptionist Access Role",
			nil, deskScopes),
		healthPersona("auditor", "Information governance auditor: searches the trust's audit trail, cannot view plans",
			"555000000004", "Dee Madeup", "555000000104", "S8000:G8000:R0001", "Privacy Officer",
			nil, auditorScopes),
		// Not a national RBAC role: none is a Trust's safeguarding lead
		// (register.DefaultSafeguardingRoles).
		healthPersona("safeguarding-lead", "Safeguarding lead of the Trust: reads discrepancy reports and marks them resolved; scheduled-care access (B0170)",
			"555000000005", "Nurse Eve Invented", "555000000105", "S8000:G8000:R8099", "Safeguarding Children Lead",
			[]string{cpis.ActivityScheduledView}, safeguardingScopes),
		healthPersona("paediatrician", "Paediatrician: both unscheduled (B0107) and scheduled (B0170) care, chooses the care setting before each search",
			"555000000006", "Dr Fay Imaginary", "555000000106", "S8000:G8000:R8000", "Clinical Practitioner Access Role",
			[]string{cpis.ActivityUnscheduledView, cpis.ActivityScheduledView}, clinicianScopes),
	}
	health = append(health, Persona{
		Name:        "trust-system",
		Description: "The Trust's interface engine: a system of the Trust with scheduled-care rights (B0170); subscribes to plan changes on the children open to the Trust's services",
		Kind:        cpis.HealthSystem,
		UserID:      trustSystemClientID, DisplayName: trustSystemName,
		OrgCode: devOrgCode, OrgName: devOrgName,
		Activities: []string{cpis.ActivityScheduledView}, Scopes: slices.Clone(trustSystemScopes),
	})
	for _, e := range cpis.TrustDirectory() {
		health = append(health, laPersona(e.LocalAuthority))
	}
	return health
}

func healthPersona(name, desc, uid, person, roleID, roleCode, roleName string, activities, scopes []string) Persona {
	return Persona{
		Name: name, Description: desc, Kind: cpis.HealthUser,
		UserID: uid, DisplayName: person,
		RoleProfileID: roleID, RoleCode: roleCode, RoleName: roleName,
		OrgCode: devOrgCode, OrgName: devOrgName,
		Activities: append([]string{}, activities...), Scopes: slices.Clone(scopes),
	}
}

func laPersona(la cpis.LocalAuthority) Persona {
	return Persona{
		Name:        "la:" + la.Code,
		Description: "Case-management system of " + la.Name + ": uploads and ends its own plans",
		Kind:        cpis.LASystem,
		UserID:      "la-" + la.Code,
		DisplayName: la.Name,
		OrgCode:     la.Code,
		OrgName:     la.Name,
		Activities:  []string{},
		Scopes:      slices.Clone(laScopes),
	}
}

func (p Persona) clone() Persona {
	p.Activities = slices.Clone(p.Activities)
	p.Scopes = slices.Clone(p.Scopes)
	return p
}

// claims are the persona's private claims, shaped as a CIS2 identity for a
// health user and with la_code for an LA system, so that Verify maps them
// exactly as it maps tokens from real issuers.
func (p Persona) claims() map[string]any {
	scope := strings.Join(p.Scopes, " ")
	switch p.Kind {
	case cpis.LASystem:
		return map[string]any{"la_code": p.OrgCode, "la_name": p.OrgName, "client_id": p.UserID, "scope": scope}
	case cpis.HealthSystem:
		return map[string]any{"ods_code": p.OrgCode, "org_name": p.OrgName, "name": p.DisplayName,
			"activity_codes": slices.Clone(p.Activities), "client_id": p.UserID, "scope": scope}
	}
	activities := append([]string{}, p.Activities...) // [] rather than null, as CIS2 sends
	return map[string]any{
		"name":            p.DisplayName,
		"nhsid_useruid":   p.UserID,
		"selected_roleid": p.RoleProfileID,
		"nhsid_nrbac_roles": []cis2Role{{
			PersonRoleID: p.RoleProfileID, OrgCode: p.OrgCode, RoleCode: p.RoleCode,
			RoleName: p.RoleName, ActivityCodes: activities,
		}},
		"nhsid_user_orgs":    []cis2Org{{OrgCode: p.OrgCode, OrgName: p.OrgName}},
		"id_assurance_level": "3",
		"client_id":          devClientID,
		"scope":              scope,
	}
}
