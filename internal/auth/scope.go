package auth

import "strings"

// smartScope is one SMART on FHIR resource scope, v1 or v2, with its
// permissions normalised to v2 letters (c, r, u, d, s).
type smartScope struct {
	level    string // the SMART context: patient, user or system
	resource string // a FHIR resource type; "*" is kept as written and never matches
	perms    string
}

// parseScope reads "<context>/<resource>.<permissions>". SMART v1 "read"
// means read and search (rs) and "write" means create, update and delete
// (cud), as SMART v2 maps them. A v2 permission string is a non-empty ordered
// subset of "cruds". The v1 wildcard permission "*" and v2 scopes restricted
// by a query ("?category=...") are not understood, so they grant nothing:
// this server prefers refusing to guessing what a restriction allows.
func parseScope(s string) (smartScope, bool) {
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
		return smartScope{}, false
	}
	res, perm, ok := strings.Cut(rest, ".")
	if !ok || res == "" {
		return smartScope{}, false
	}
	switch perm {
	case "read":
		perm = "rs"
	case "write":
		perm = "cud"
	default:
		if !validV2Perms(perm) {
			return smartScope{}, false
		}
	}
	return smartScope{level: ctx, resource: res, perms: perm}, true
}

// validV2Perms reports whether p is a non-empty subset of "cruds" in that order.
func validV2Perms(p string) bool {
	const order = "cruds"
	last := -1
	for _, c := range p {
		i := strings.IndexRune(order, c)
		if i <= last {
			return false
		}
		last = i
	}
	return p != ""
}

// allows reports whether the scope covers every permission in perms on
// resource at level. The resource must be named exactly: "*" grants nothing.
func (s smartScope) allows(level, resource, perms string) bool {
	if s.level != level || s.resource != resource {
		return false
	}
	for _, c := range perms {
		if !strings.ContainsRune(s.perms, c) {
			return false
		}
	}
	return true
}
