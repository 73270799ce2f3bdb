// Package deploy holds Watchfloor's deployment bundles: the container image
// (Dockerfile), a compose stack, Kubernetes manifests, the NATS cluster
// configs, systemd units for sensors, Grafana dashboards and the documented
// example configuration. It has no code; its tests validate the bundles
// statically and against the real NATS config parser and ClickHouse schema.
package deploy
