package webhook

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	refused := []struct {
		addr, rangeName string
	}{
		// Unspecified and "this network".
		{"0.0.0.0", "0.0.0.0/32"},
		{"0.1.2.3", "0.0.0.0/8"},
		{"::", "::/128"},
		// Loopback.
		{"127.0.0.1", "127.0.0.0/8"},
		{"127.255.255.254", "127.0.0.0/8"},
		{"::1", "::1/128"},
		// RFC 1918.
		{"10.0.0.5", "10.0.0.0/8"},
		{"10.255.255.255", "10.0.0.0/8"},
		{"172.16.0.1", "172.16.0.0/12"},
		{"172.31.255.255", "172.16.0.0/12"},
		{"192.168.1.1", "192.168.0.0/16"},
		// CGNAT.
		{"100.64.0.1", "100.64.0.0/10"},
		{"100.127.255.255", "100.64.0.0/10"},
		// Link-local and cloud metadata.
		{"169.254.169.254", "169.254.169.254/32"},
		{"169.254.1.1", "169.254.0.0/16"},
		{"fe80::1", "fe80::/10"},
		{"fe80::1%eth0", "fe80::/10"},
		{"febf::1", "fe80::/10"},
		{"fd00:ec2::254", "fd00:ec2::254/128"},
		// IETF protocol assignments, documentation, benchmarking.
		{"192.0.0.8", "192.0.0.0/24"},
		{"192.0.2.1", "192.0.2.0/24"},
		{"198.51.100.7", "198.51.100.0/24"},
		{"203.0.113.9", "203.0.113.0/24"},
		{"198.18.0.1", "198.18.0.0/15"},
		{"198.19.255.255", "198.18.0.0/15"},
		{"2001:db8::1", "2001:db8::/32"},
		{"3fff::1", "3fff::/20"},
		{"2001:2::1", "2001:2::/48"},
		// Multicast, broadcast, reserved.
		{"224.0.0.1", "224.0.0.0/4"},
		{"239.255.255.250", "224.0.0.0/4"},
		{"255.255.255.255", "255.255.255.255/32"},
		{"240.0.0.1", "240.0.0.0/4"},
		{"ff02::1", "ff00::/8"},
		{"ff0e::1", "ff00::/8"},
		// IPv6 unique local, site-local, discard.
		{"fc00::1", "fc00::/7"},
		{"fd12:3456::1", "fc00::/7"},
		{"fec0::1", "fec0::/10"},
		{"100::1", "100::/64"},
		// IPv4-mapped forms.
		{"::ffff:127.0.0.1", "127.0.0.0/8"},
		{"::ffff:10.0.0.5", "10.0.0.0/8"},
		{"::ffff:169.254.169.254", "169.254.169.254/32"},
		{"::ffff:0.0.0.0", "0.0.0.0/32"},
		{"::ffff:7f00:1", "127.0.0.0/8"},
		// IPv4-translated and IPv4-compatible forms.
		{"::ffff:0:10.0.0.5", "10.0.0.0/8"},
		{"::127.0.0.1", "127.0.0.0/8"},
		{"::192.168.0.1", "192.168.0.0/16"},
		{"::2", "0.0.0.0/8"},
		// NAT64.
		{"64:ff9b::127.0.0.1", "127.0.0.0/8"},
		{"64:ff9b::a9fe:a9fe", "169.254.169.254/32"},
		{"64:ff9b::10.1.2.3", "10.0.0.0/8"},
		// The local-use NAT64 prefix is refused whole, whatever it embeds.
		{"64:ff9b:1:a00:5:500::", "64:ff9b:1::/48"},
		{"64:ff9b:1::192.168.0.1", "64:ff9b:1::/48"},
		{"64:ff9b:1::8.8.8.8", "64:ff9b:1::/48"},
		// Teredo, 6to4 relay anycast.
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"},
		{"192.88.99.1", "192.88.99.0/24"},
		// 6to4.
		{"2002:7f00:1::1", "127.0.0.0/8"},
		{"2002:a9fe:a9fe::", "169.254.169.254/32"},
		{"2002:c0a8:101:1::1", "192.168.0.0/16"},
		{"2002:0a00:0005::", "10.0.0.0/8"},
	}
	g := NewGuard(false, nil)
	for _, tt := range refused {
		t.Run(tt.addr, func(t *testing.T) {
			err := g.Check(netip.MustParseAddr(tt.addr))
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("Check(%s) = %v, want ErrForbiddenAddress", tt.addr, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "("+tt.rangeName+")") {
				t.Errorf("message %q does not name the range %s", msg, tt.rangeName)
			}
			if !strings.Contains(msg, "HOOKLINE_ALLOW_PRIVATE_NETWORKS=true") {
				t.Errorf("message %q does not say how to allow it", msg)
			}
			if a := netip.MustParseAddr(tt.addr).WithZone(""); !strings.Contains(msg, "address "+a.String()) {
				t.Errorf("message %q does not name the address %s", msg, a)
			}
			// allowPrivate opens everything.
			if err := NewGuard(true, nil).Check(netip.MustParseAddr(tt.addr)); err != nil {
				t.Errorf("allowPrivate guard refused %s: %v", tt.addr, err)
			}
		})
	}

	allowed := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
		"192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0", "223.255.255.255", "169.253.255.255",
		"11.0.0.1", "126.255.255.255", "128.0.0.1", "192.0.1.1", "192.88.100.1",
		"2606:4700::1", "2001:4860:4860::8888", "2a00:1450:4001::1", "fbff:ffff::1", "fe7f::1",
		"::ffff:8.8.8.8", "::8.8.8.8", "::ffff:0:8.8.8.8", "64:ff9b::8.8.8.8", "64:ff9b::808:808",
		"2002:808:808::1", "2001:db9::1", "2001:1::1",
	}
	for _, a := range allowed {
		if err := g.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("Check(%s) = %v, want nil (public address)", a, err)
		}
	}

	if err := g.Check(netip.Addr{}); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Check(zero Addr) = %v, want ErrForbiddenAddress", err)
	}
	var nilGuard *Guard
	if err := nilGuard.Check(netip.MustParseAddr("10.0.0.1")); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("nil guard allowed 10.0.0.1: %v", err)
	}
	if err := nilGuard.Check(netip.MustParseAddr("8.8.8.8")); err != nil {
		t.Errorf("nil guard refused 8.8.8.8: %v", err)
	}
}

func TestGuardMessages(t *testing.T) {
	g := NewGuard(false, nil)
	for addr, want := range map[string]string{
		"10.0.0.5":        "address 10.0.0.5 is in a private network (10.0.0.0/8); set HOOKLINE_ALLOW_PRIVATE_NETWORKS=true",
		"::ffff:10.0.0.5": "address ::ffff:10.0.0.5 is an IPv4-mapped form of 10.0.0.5, which is in a private network (10.0.0.0/8)",
		"64:ff9b::a00:5":  "address 64:ff9b::a00:5 is a NAT64 form of 10.0.0.5, which is in a private network (10.0.0.0/8)",
		"2002:a00:5::1":   "address 2002:a00:5::1 is a 6to4 form of 10.0.0.5, which is in a private network (10.0.0.0/8)",
		"169.254.169.254": "address 169.254.169.254 is the cloud metadata address (link-local) (169.254.169.254/32)",
		"127.0.0.1":       "address 127.0.0.1 is loopback (127.0.0.0/8)",
	} {
		err := g.Check(netip.MustParseAddr(addr))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Check(%s) = %v, want a message starting %q", addr, err, want)
		}
	}
}

func TestGuardAllowedPrefixes(t *testing.T) {
	allowed, err := ParsePrefixes("10.1.0.0/16, 127.0.0.1, fd00::/8, ::ffff:192.168.5.0/120")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(false, allowed)
	for _, a := range []string{"10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::10.1.2.3", "2002:a01:203::", "127.0.0.1", "fd00:ec2::254", "fd12::1", "192.168.5.77"} {
		if err := g.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("Check(%s) = %v, want allowed by a prefix", a, err)
		}
	}
	for _, a := range []string{"10.2.0.1", "127.0.0.2", "::1", "fc00::1", "192.168.6.1", "169.254.169.254"} {
		if err := g.Check(netip.MustParseAddr(a)); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Check(%s) = %v, want still refused", a, err)
		}
	}
	// An invalid prefix passed directly is ignored rather than opening anything.
	if err := NewGuard(false, []netip.Prefix{{}}).Check(netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("a zero prefix opened 10.0.0.1")
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 10.0.0.0/8 ,192.168.1.1,, ::1 ,fd00::/8,10.1.2.3/16,::ffff:10.0.0.0/104")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.1/32", "::1/128", "fd00::/8", "10.1.0.0/16", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	if got, err := ParsePrefixes(""); err != nil || got != nil {
		t.Errorf(`ParsePrefixes("") = %v, %v`, got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "nonsense", "10.0.0.0/8,foo", "::1/129", "fe80::1%eth0", "10.0.0/8", "300.1.1.1"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted it", bad)
		} else if !strings.Contains(err.Error(), "invalid network") {
			t.Errorf("ParsePrefixes(%q) error %q does not say which network", bad, err)
		}
	}
}

func BenchmarkGuardCheck(b *testing.B) {
	g := NewGuard(false, nil)
	a := netip.MustParseAddr("2606:4700::1")
	for b.Loop() {
		_ = g.Check(a)
	}
}
