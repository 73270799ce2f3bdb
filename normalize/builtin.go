package normalize

// builtinFormats lists the formats registered by Builtin.
func builtinFormats() []Format {
	f := []Format{
		ZeekDNS(),
		Syslog(),
		Zeek(),
		SuricataEVE(),
		CEF(),
		LEEF(),
		WinEventJSON(),
		Auditd(),
		Fortinet(),
		Squid(),
		CiscoASA(),
		PaloAlto(),
		// DNS resolver logs (dns*.go, bind.go, unbound.go, coredns.go, windns.go).
		BindQuery(), InfobloxNIOS(), Unbound(), Dnsmasq(), CoreDNS(), WindowsDNS(), Dnstap(),
	}
	f = append(f, ZeekLogs()...)
	return f
}
