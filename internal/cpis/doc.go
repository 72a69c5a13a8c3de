// Package cpis is the Child Protection - Information Sharing domain: NHS
// numbers, plans and their display rules, local authorities, and the audit
// records of who looked. It is pure: no transport, no storage, no clock of its
// own (callers pass "today"), and it imports nothing of this module.
package cpis
