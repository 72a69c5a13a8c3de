// Package clients ships the registered clients of dev mode: one case
// management system per development LA (cpis.TrustDirectory) and the
// Trust's interface engine, with their private keys beside them
// (<client_id>.private.jwk.json). Every key here is fictional and public
// knowledge: they are for trying SMART Backend Services on one machine,
// never for anything real. cpisd reads DevClients when CPIS_CLIENTS_FILE
// is not set, wherever it runs from.
package clients

import _ "embed" // for DevClients

// DevClients is dev-clients.json, the dev mode default of CPIS_CLIENTS_FILE.
//
//go:embed dev-clients.json
var DevClients []byte
