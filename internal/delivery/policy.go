package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
)

// Policy is where notifications may be sent: the defence against a
// subscription aimed at the server's own network (SSRF). In production an
// endpoint whose host resolves to a loopback, private, link-local,
// multicast, unspecified or cloud metadata address is refused, unless its
// host is listed in AllowedHosts (CPIS_SUBSCRIPTION_ALLOWED_HOSTS). The
// address is checked twice: when the subscription is stored (Check) and
// on every connection (the dialer's Control), so that a name re-pointed
// after the check (DNS rebinding) is still refused.
type Policy struct {
	// Dev allows every address: in dev mode receivers run on loopback.
	Dev bool
	// AllowedHosts are host names (or literal addresses) exempt from the
	// address check, compared case-insensitively.
	AllowedHosts []string
	// Resolver resolves host names; nil uses net.DefaultResolver.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// errForbiddenAddress is why a host is refused.
var errForbiddenAddress = errors.New("the endpoint's host resolves to an address notifications are not sent to (loopback, private, link-local or metadata)")

// metadataAddrs are cloud instance-metadata services outside the ranges
// below (169.254.169.254 is link-local already).
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

// sharedSpace is carrier-grade NAT space (RFC 6598): not on the internet.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// Forbidden reports whether notifications may never be sent to a.
func Forbidden(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() ||
		sharedSpace.Contains(a) || slices.Contains(metadataAddrs, a) || !a.IsValid()
}

// allowed reports whether host is exempt from the address check.
func (p Policy) allowed(host string) bool {
	if p.Dev {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range p.AllowedHosts {
		if strings.TrimSuffix(strings.ToLower(h), ".") == host {
			return true
		}
	}
	return false
}

// Check vets endpoint's host where it resolves now: every address it
// resolves to must be allowed. The endpoint's form is cpis.CheckEndpoint's.
func (p Policy) Check(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("the endpoint is not a URL")
	}
	host := u.Hostname()
	if p.allowed(host) {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if Forbidden(a) {
			return errForbiddenAddress
		}
		return nil
	}
	var r interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	} = net.DefaultResolver
	if p.Resolver != nil {
		r = p.Resolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("the endpoint's host does not resolve")
	}
	for _, a := range addrs {
		if Forbidden(a) {
			return errForbiddenAddress
		}
	}
	return nil
}

// control is the dialer's last word on each connection: the address it is
// about to connect to must be allowed, unless the endpoint's host is.
func (p Policy) control(host string) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if p.allowed(host) {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || Forbidden(ap.Addr()) {
			return errForbiddenAddress
		}
		return nil
	}
}
