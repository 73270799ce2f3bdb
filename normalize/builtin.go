package normalize

// builtinFormats lists the formats registered by Builtin.
func builtinFormats() []Format {
	return []Format{
		ZeekDNS(),
		Syslog(),
		// DNS resolver logs (dns*.go, bind.go, unbound.go, coredns.go, windns.go).
		BindQuery(), InfobloxNIOS(), Unbound(), Dnsmasq(), CoreDNS(), WindowsDNS(), Dnstap(),
	}
}
