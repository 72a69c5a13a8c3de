package delivery

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// resolver answers from a table, as DNS would.
type resolver map[string][]string

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := r[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func TestForbiddenAddresses(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"169.254.169.254": true, "fe80::1": true, "fc00::1": true, "0.0.0.0": true, "::": true,
		"224.0.0.1": true, "100.64.0.1": true, "100.100.100.200": true, "fd00:ec2::254": true,
		"::ffff:127.0.0.1": true, "::ffff:10.0.0.1": true,
		"93.184.216.34": false, "2606:2800:220:1::1": false, "8.8.8.8": false,
	} {
		if got := Forbidden(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Forbidden(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	dns := resolver{
		"receiver.example.org": {"93.184.216.34"},
		"internal.example.org": {"10.0.0.5"},
		"mixed.example.org":    {"93.184.216.34", "127.0.0.1"},
		"metadata.example.org": {"169.254.169.254"},
	}
	prod := Policy{Resolver: dns, AllowedHosts: []string{"Internal.Example.org"}}
	tests := []struct {
		endpoint string
		p        Policy
		ok       bool
	}{
		{"https://receiver.example.org/hook", prod, true},
		{"https://internal.example.org/hook", prod, true}, // listed
		{"https://mixed.example.org/hook", prod, false},   // one address is loopback
		{"https://metadata.example.org/latest", prod, false},
		{"https://169.254.169.254/latest", prod, false},
		{"https://[::1]:8443/hook", prod, false},
		{"https://127.0.0.1/hook", prod, false},
		{"https://nowhere.example.org/hook", prod, false}, // does not resolve
		{"https://93.184.216.34/hook", prod, true},
		{"http://127.0.0.1:9/hook", Policy{Dev: true, Resolver: dns}, true},
	}
	for _, tt := range tests {
		err := tt.p.Check(context.Background(), tt.endpoint)
		if (err == nil) != tt.ok {
			t.Errorf("Check(%s) = %v, want ok %v", tt.endpoint, err, tt.ok)
		}
	}
}

func TestDialControlRefusesWhatDNSRepointed(t *testing.T) {
	p := Policy{AllowedHosts: []string{"listed.example.org"}}
	if err := p.control("receiver.example.org")("tcp", "127.0.0.1:443", nil); err == nil {
		t.Fatal("a connection to loopback was allowed for a host that resolved elsewhere when checked")
	}
	if err := p.control("receiver.example.org")("tcp", "93.184.216.34:443", nil); err != nil {
		t.Fatalf("a public address was refused: %v", err)
	}
	if err := p.control("listed.example.org")("tcp", "10.0.0.5:443", nil); err != nil {
		t.Fatalf("a listed host was refused: %v", err)
	}
}
