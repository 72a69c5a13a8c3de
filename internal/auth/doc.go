// Package auth decides who is calling and what they may do. It verifies
// bearer tokens (signed JWTs from an OpenID Connect issuer such as NHS CIS2,
// or from the development issuer in this package), turns their claims into a
// Principal (a CIS2 health user with the role selected at login, or a local
// authority's system), and answers the authorisation questions the API asks:
// may this principal read plans, write them, read the audit trail.
//
// Authorisation needs both halves: the national RBAC activity of the selected
// role (B0107 or B0170 for CP-IS views) and a SMART on FHIR scope granted to
// the client application. Scopes are matched strictly: no wildcards, no
// query-restricted v2 scopes. Tokens never reach logs or error messages.
package auth
