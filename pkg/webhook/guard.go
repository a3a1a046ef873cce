package webhook

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
)

// allowHint tells an operator how to open the guard for an address it refused.
const allowHint = "; set HOOKLINE_ALLOW_PRIVATE_NETWORKS=true or list the range in HOOKLINE_ALLOWED_NETWORKS to allow it"

// Guard is the SSRF guard: it decides whether an address may be dialled. A Client runs
// it in net.Dialer.ControlContext, that is on the resolved IP actually being dialled,
// after DNS resolution, so DNS rebinding cannot get a forbidden address past it.
//
// A Guard is immutable and safe for concurrent use.
type Guard struct {
	allowPrivate bool
	allowed      []netip.Prefix
	rules        []rule
}

// rule is one refused range and how it is called in error messages
// ("address X is <what> (<prefix>)").
type rule struct {
	prefix netip.Prefix
	what   string
}

// NewGuard returns a guard that refuses the private and special-purpose ranges listed
// below, unless allowPrivate is true (everything is allowed: dev mode, tests on
// loopback) or the address is inside one of the allowed prefixes.
//
// Refused: unspecified (0.0.0.0, ::), 0.0.0.0/8, loopback (127.0.0.0/8, ::1), RFC 1918
// (10/8, 172.16/12, 192.168/16), CGNAT 100.64/10, link-local 169.254/16 and fe80::/10
// (cloud metadata 169.254.169.254), IETF protocol assignments 192.0.0.0/24,
// documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20),
// benchmarking (198.18/15, 2001:2::/48), deprecated 6to4 relay anycast 192.88.99/24,
// multicast (224/4, ff00::/8), broadcast 255.255.255.255, reserved 240/4, unique local
// fc00::/7 (includes the metadata address fd00:ec2::254), deprecated site-local
// fec0::/10, discard-only 100::/64, Teredo 2001::/32 (its embedded IPv4 is obfuscated),
// the whole local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215: domain-local, and where the
// IPv4 address sits depends on the operator's prefix length), and any IPv6 form
// embedding a refused IPv4 address, which is unwrapped and checked as that IPv4 address:
// IPv4-mapped (::ffff:0:0/96), IPv4-translated (::ffff:0:0:0/96), IPv4-compatible
// (::/96), NAT64 with the well-known prefix (64:ff9b::/96) and 6to4 (2002::/16).
func NewGuard(allowPrivate bool, allowed []netip.Prefix) *Guard {
	g := &Guard{allowPrivate: allowPrivate, rules: defaultRules()}
	for _, p := range allowed {
		if p.IsValid() {
			g.allowed = append(g.allowed, normalizePrefix(p))
		}
	}
	return g
}

func defaultRules() []rule {
	r := func(cidr, what string) rule { return rule{netip.MustParsePrefix(cidr), what} }
	return []rule{
		// IPv4. More specific entries come first so that messages name them.
		r("0.0.0.0/32", "the unspecified address"),
		r("0.0.0.0/8", `in the "this network" range`),
		r("10.0.0.0/8", "in a private network"),
		r("100.64.0.0/10", "in the carrier-grade NAT shared address space"),
		r("127.0.0.0/8", "loopback"),
		r("169.254.169.254/32", "the cloud metadata address (link-local)"),
		r("169.254.0.0/16", "link-local"),
		r("172.16.0.0/12", "in a private network"),
		r("192.0.0.0/24", "in the IETF protocol assignments range"),
		r("192.0.2.0/24", "in a documentation range"),
		r("192.88.99.0/24", "in the deprecated 6to4 relay anycast range"),
		r("192.168.0.0/16", "in a private network"),
		r("198.18.0.0/15", "in the benchmarking range"),
		r("198.51.100.0/24", "in a documentation range"),
		r("203.0.113.0/24", "in a documentation range"),
		r("224.0.0.0/4", "multicast"),
		r("255.255.255.255/32", "the broadcast address"),
		r("240.0.0.0/4", "in the reserved range"),
		// IPv6.
		r("::/128", "the unspecified address"),
		r("::1/128", "loopback"),
		r("100::/64", "in the discard-only range"),
		r("64:ff9b:1::/48", "in the local-use NAT64 range, whose IPv4 embedding is operator-specific"),
		r("2001::/32", "in the Teredo tunnelling range"),
		r("2001:2::/48", "in the benchmarking range"),
		r("2001:db8::/32", "in a documentation range"),
		r("3fff::/20", "in a documentation range"),
		r("fd00:ec2::254/128", "the cloud metadata address (unique local)"),
		r("fc00::/7", "in a unique local network"),
		r("fe80::/10", "link-local"),
		r("fec0::/10", "site-local"),
		r("ff00::/8", "multicast"),
	}
}

// Check reports whether ip may be dialled: nil when allowed, otherwise an error wrapping
// ErrForbiddenAddress that names the address and the refused range. A zone
// (fe80::1%eth0) is ignored. A nil Guard behaves like NewGuard(false, nil).
func (g *Guard) Check(ip netip.Addr) error {
	if g == nil {
		return NewGuard(false, nil).Check(ip)
	}
	if g.allowPrivate {
		return nil
	}
	if !ip.IsValid() {
		return newClassError(ErrForbiddenAddress, "invalid address", nil)
	}
	orig := ip.WithZone("")
	ip = orig.Unmap()
	if g.isAllowed(orig) || g.isAllowed(ip) {
		return nil
	}
	if rl, ok := g.match(ip); ok {
		if ip != orig {
			return g.refuse(fmt.Sprintf("address %s is an IPv4-mapped form of %s, which is %s (%s)", orig, ip, rl.what, rl.prefix))
		}
		return g.refuse(fmt.Sprintf("address %s is %s (%s)", ip, rl.what, rl.prefix))
	}
	if !ip.Is6() {
		return nil
	}
	var buf [2]embedded
	for _, e := range embeddedIPv4(ip, buf[:0]) {
		if g.isAllowed(e.addr) {
			continue
		}
		if rl, ok := g.match(e.addr); ok {
			return g.refuse(fmt.Sprintf("address %s is %s form of %s, which is %s (%s)", ip, e.form, e.addr, rl.what, rl.prefix))
		}
	}
	return nil
}

func (g *Guard) refuse(msg string) error {
	return newClassError(ErrForbiddenAddress, msg+allowHint, nil)
}

func (g *Guard) isAllowed(ip netip.Addr) bool {
	for _, p := range g.allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *Guard) match(ip netip.Addr) (rule, bool) {
	for _, rl := range g.rules {
		if rl.prefix.Contains(ip) {
			return rl, true
		}
	}
	return rule{}, false
}

// control is the net.Dialer.ControlContext hook: it runs on the socket about to connect
// to address ("ip:port", already resolved), before the connection is attempted.
func (g *Guard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return newClassError(ErrForbiddenAddress, fmt.Sprintf("cannot check address %q", address), nil)
	}
	return g.Check(ap.Addr())
}

// embedded is an IPv4 address found inside an IPv6 address, and the form it was in.
type embedded struct {
	addr netip.Addr
	form string
}

// embeddedIPv4 appends to dst the IPv4 addresses that ip (an IPv6 address, not
// IPv4-mapped) carries in one of the translation or tunnelling forms.
func embeddedIPv4(ip netip.Addr, dst []embedded) []embedded {
	b := ip.As16()
	v4 := func(a, b2, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b2, c, d}) }
	last := v4(b[12], b[13], b[14], b[15])
	zero := func(from, to int) bool {
		for _, x := range b[from:to] {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case zero(0, 12):
		// ::a.b.c.d, IPv4-compatible (deprecated, RFC 4291).
		dst = append(dst, embedded{last, "an IPv4-compatible"})
	case zero(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0:
		// ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765).
		dst = append(dst, embedded{last, "an IPv4-translated"})
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12):
		// 64:ff9b::a.b.c.d, well-known NAT64 prefix (RFC 6052).
		dst = append(dst, embedded{last, "a NAT64"})
	case b[0] == 0x20 && b[1] == 0x02:
		// 2002:aabb:ccdd::/48, 6to4 (RFC 3056).
		dst = append(dst, embedded{v4(b[2], b[3], b[4], b[5]), "a 6to4"})
	}
	return dst
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes, such as the value of
// HOOKLINE_ALLOWED_NETWORKS. A bare address stands for itself (/32 or /128); spaces
// around items and empty items are ignored; host bits are masked off
// ("10.1.2.3/8" is 10.0.0.0/8). IPv4-mapped prefixes are turned into IPv4 prefixes.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			var err error
			p, err = netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("invalid network %q: %w", item, err)
			}
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("invalid network %q: not a CIDR prefix or an IP address: %w", item, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("invalid network %q: zones are not allowed", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, normalizePrefix(p))
	}
	return out, nil
}

// normalizePrefix masks host bits off p and turns an IPv4-mapped prefix
// (::ffff:10.0.0.0/104) into the IPv4 prefix it stands for.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p
}
