package detect

import "github.com/watchfloor/watchfloor/schemas"

// attrKind is the shape of an event attribute.
type attrKind uint8

const (
	kindString  attrKind = iota // one string; "" is absent
	kindStrings                 // a list of strings; empty is absent
	kindInt                     // an integer; see intAttr for absence
)

// attribute is one readable attribute of schemas.Event. The accessors are
// plain functions over the struct: no reflection, no maps, no allocation.
type attribute struct {
	name    string
	kind    attrKind
	str     func(*schemas.Event) string
	strs    func(*schemas.Event) []string
	integer func(*schemas.Event) (int64, bool) // value, present
}

// attributes is the catalogue a mapping may name. It grows with
// schemas.Event; the names follow OCSF attribute paths.
var attributes = []attribute{
	{name: "message", kind: kindString, str: func(e *schemas.Event) string { return e.Message }},
	{name: "raw_data", kind: kindString, str: func(e *schemas.Event) string { return e.Raw }},
	{name: "agency", kind: kindString, str: func(e *schemas.Event) string { return e.Agency }},
	{name: "sensor", kind: kindString, str: func(e *schemas.Event) string { return e.Sensor }},
	{name: "format", kind: kindString, str: func(e *schemas.Event) string { return e.Format }},
	{name: "class_uid", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.ClassUID), true }},
	{name: "activity_id", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.ActivityID), true }},
	{name: "severity_id", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.SeverityID), true }},
	{name: "status_id", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.StatusID), true }},
	{name: "metadata.product", kind: kindString, str: func(e *schemas.Event) string { return e.Metadata.Product }},
	{name: "metadata.vendor", kind: kindString, str: func(e *schemas.Event) string { return e.Metadata.Vendor }},
	{name: "metadata.log_name", kind: kindString, str: func(e *schemas.Event) string { return e.Metadata.LogName }},
	{name: "metadata.uid", kind: kindString, str: func(e *schemas.Event) string { return e.Metadata.UID }},
	{name: "src_endpoint.ip", kind: kindString, str: func(e *schemas.Event) string { return e.Src.IP }},
	{name: "src_endpoint.port", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.Src.Port), e.Src.Port != 0 }},
	{name: "src_endpoint.hostname", kind: kindString, str: func(e *schemas.Event) string { return e.Src.Hostname }},
	{name: "dst_endpoint.ip", kind: kindString, str: func(e *schemas.Event) string { return e.Dst.IP }},
	{name: "dst_endpoint.port", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.Dst.Port), e.Dst.Port != 0 }},
	{name: "dst_endpoint.hostname", kind: kindString, str: func(e *schemas.Event) string { return e.Dst.Hostname }},
	{name: "device.hostname", kind: kindString, str: func(e *schemas.Event) string { return e.DeviceHostname }},
	{name: "actor.process.name", kind: kindString, str: func(e *schemas.Event) string { return e.ProcessName }},
	{name: "actor.process.pid", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.ProcessPID), e.ProcessPID != 0 }},
	{name: "user.name", kind: kindString, str: func(e *schemas.Event) string { return e.UserName }},
	{name: "connection_info.protocol_name", kind: kindString, str: func(e *schemas.Event) string { return e.Protocol }},
	{name: "query.hostname", kind: kindString, str: func(e *schemas.Event) string { return e.DNS.QueryHostname }},
	{name: "query.type", kind: kindString, str: func(e *schemas.Event) string { return e.DNS.QueryType }},
	{name: "query.class", kind: kindString, str: func(e *schemas.Event) string { return e.DNS.QueryClass }},
	{name: "rcode", kind: kindString, str: func(e *schemas.Event) string { return e.DNS.RCode }},
	{name: "rcode_id", kind: kindInt, integer: func(e *schemas.Event) (int64, bool) { return int64(e.DNS.RCodeID), e.DNS.RCodeID >= 0 }},
	{name: "answers.rdata", kind: kindStrings, strs: func(e *schemas.Event) []string { return e.DNS.Answers }},
}

func lookupAttribute(name string) (*attribute, bool) {
	for i := range attributes {
		if attributes[i].name == name {
			return &attributes[i], true
		}
	}
	return nil, false
}
