package normalize

// builtinFormats lists the formats registered by Builtin.
func builtinFormats() []Format {
	return []Format{
		ZeekDNS(),
		Syslog(),
	}
}
