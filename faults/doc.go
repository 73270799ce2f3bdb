// Package faults holds the fault suite: end-to-end tests that run the real
// binaries (watchfloor run, wfsensor) against real servers (ClickHouse,
// NATS JetStream embedded or Debian's nats-server), inject a fault under
// load, and end with an exact count: every record written equals the rows in
// events plus dead_letters, counted both with count() (no FINAL, so a
// duplicate would show) and uniqExact of the row id.
//
//	a) kill -9 of `watchfloor run` (and its embedded NATS) under load, restart
//	b) ClickHouse stopped under load, started again
//	c) an external nats-server restarted under load
//	d) a sensor killed with SIGKILL mid-replay and restarted
//	e) 10,000 poison records mixed into clean traffic
//
// The short form runs in `go test ./...`; WATCHFLOOR_FAULTS_LONG=1 runs
// the long form (longer load, a 30 s ClickHouse outage) and logs the peak
// memory of each process and the recovery time after each fault.
package faults
