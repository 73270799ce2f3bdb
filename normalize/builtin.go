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
	}
	f = append(f, ZeekLogs()...)
	return f
}
