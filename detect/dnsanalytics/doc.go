// Package dnsanalytics raises findings on DNS behaviour no blocklist
// names: algorithmically generated domains (DGA), tunnelling and
// exfiltration through DNS, and NXDOMAIN bursts.
//
// Every analytic is a rule with its own id, Sigma level and thresholds in
// Config, which detection engineers tune (watchfloor run exposes them as
// --dns.* flags):
//
//   - dns.dga: the registrable label's surprise (bits per character) under a
//     character trigram model of popular domains (TrainModel), for labels of
//     at least DGAMinLabelLen characters that are not themselves popular.
//   - dns.tunnel.name: the labels below the registrable domain are long and
//     high-entropy, or one label is near the 63-byte limit.
//   - dns.tunnel.unique_subdomains: many distinct names under one domain
//     from one client within a window.
//   - dns.tunnel.txt_null_volume: many TXT/NULL/ANY queries under one domain
//     from one client within a window.
//   - dns.nxdomain_burst: many NXDOMAIN answers to one client within a window.
//   - dns.first_seen: a domain no client of the agency queried before, after
//     a warm-up that learns the agency's usual domains.
//
// Windowed analytics fire once per key and window, on the event that
// crosses the threshold; they count by event time in tumbling windows.
package dnsanalytics
