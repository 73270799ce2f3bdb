// Package intel matches events against threat-intelligence feeds.
//
// Feeds are plain lists, hosts files, CSV, Zeek Intel files and STIX 2.1
// bundles (see Format). A Builder compiles any number of feeds into an
// immutable Set; a Matcher evaluates events against the Set it holds and
// raises one schemas.Finding per (feed, indicator), with rule id
// "intel.<feed>" and tags naming the feed, the indicator and the matched
// attribute. Swapping in a new Set (Matcher.Swap) is how feeds reload
// without a restart; Reloader does that from a JetStream Object Store.
//
// Domain indicators match the query name exactly and every parent domain
// above the public suffix (PublicSuffixes): "evil.example" matches
// "a.b.evil.example". IP indicators match DNS answers and dst_endpoint.ip;
// CIDR indicators match any address inside them.
package intel
