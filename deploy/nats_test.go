package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest"
)

const natsNodes = 3

// TestNATSClusterConfigs parses every node's config with nats-server's own
// parser and checks that they form one JetStream cluster of three, with
// room for a full raw batch.
func TestNATSClusterConfigs(t *testing.T) {
	var wantRoutes []string
	for i := 1; i <= natsNodes; i++ {
		wantRoutes = append(wantRoutes, fmt.Sprintf("nats-route://nats-%d:6222", i))
	}
	for i := 1; i <= natsNodes; i++ {
		path := fmt.Sprintf("nats/nats-%d.conf", i)
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if want := fmt.Sprintf("nats-%d", i); opts.ServerName != want {
			t.Errorf("%s: server_name %q, want %q (the compose service name)", path, opts.ServerName, want)
		}
		if !opts.JetStream || opts.StoreDir == "" {
			t.Errorf("%s: JetStream %v, store_dir %q: want JetStream on with a store", path, opts.JetStream, opts.StoreDir)
		}
		if opts.Cluster.Name != "watchfloor" || opts.Cluster.Port != 6222 {
			t.Errorf("%s: cluster %q on port %d, want watchfloor on 6222", path, opts.Cluster.Name, opts.Cluster.Port)
		}
		var routes []string
		for _, r := range opts.Routes {
			routes = append(routes, r.String())
		}
		slices.Sort(routes)
		if !slices.Equal(routes, wantRoutes) {
			t.Errorf("%s: routes %v, want %v", path, routes, wantRoutes)
		}
		if opts.MaxPayload < int32(ingest.MaxBatchBytes)+64<<10 {
			t.Errorf("%s: max_payload %d leaves no room for a %d-byte batch and its headers", path, opts.MaxPayload, ingest.MaxBatchBytes)
		}
		if opts.SystemAccount != "SYS" {
			t.Errorf("%s: system_account %q, want SYS", path, opts.SystemAccount)
		}
		checkSensorPermissions(t, path, opts)
	}
}

// checkSensorPermissions: every sensor user may publish to its own
// agency's raw subjects and nothing else, since the pipeline trusts the
// subject's agency.
func checkSensorPermissions(t *testing.T, path string, opts *server.Options) {
	t.Helper()
	sensors := 0
	for _, u := range opts.Users {
		agency, ok := strings.CutSuffix(u.Username, "-sensor")
		if !ok {
			continue
		}
		sensors++
		if err := ingest.ValidateAgency(agency); err != nil {
			t.Errorf("%s: sensor user %s: %v", path, u.Username, err)
		}
		p := u.Permissions
		if p == nil || p.Publish == nil || p.Subscribe == nil {
			t.Errorf("%s: sensor user %s has no publish/subscribe permissions", path, u.Username)
			continue
		}
		if want := []string{"soc.raw." + agency + ".>"}; !slices.Equal(p.Publish.Allow, want) || len(p.Publish.Deny) > 0 {
			t.Errorf("%s: sensor user %s may publish to %v, want exactly %v", path, u.Username, p.Publish.Allow, want)
		}
		if want := []string{ingest.SensorInboxPrefix(agency) + ".>"}; !slices.Equal(p.Subscribe.Allow, want) {
			t.Errorf("%s: sensor user %s may subscribe to %v, want only %v (its PubAcks)", path, u.Username, p.Subscribe.Allow, want)
		}
	}
	if sensors < 2 {
		t.Errorf("%s: %d sensor users, want the demo ones", path, sensors)
	}
}

// TestNATSPermissionsWork runs node 1's config (with its listeners moved to
// loopback and the cluster removed) and checks the accounts do what they
// say: the pipeline user can manage streams, consume, ack, publish
// detections and write the rules KV; a sensor can publish its own agency's
// batches and nothing else.
func TestNATSPermissionsWork(t *testing.T) {
	opts, err := server.ProcessConfigFile("nats/nats-1.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPPort = 0
	opts.Cluster = server.ClusterOpts{}
	opts.Routes = nil
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	connect := func(user, password string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, chan error) {
		t.Helper()
		asyncErrs := make(chan error, 16)
		nc, err := nats.Connect(srv.ClientURL(), append(opts, nats.UserInfo(user, password),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case asyncErrs <- err:
				default:
				}
			}))...)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js, asyncErrs
	}

	_, pjs, _ := connect("watchfloor", "demo-pipeline-password")
	sc := ingest.DefaultStreamConfig()
	sc.RawMaxBytes = 64 << 20
	if err := ingest.EnsureStreams(ctx, pjs, sc); err != nil {
		t.Fatalf("pipeline user: %v", err)
	}
	cons, err := pjs.CreateOrUpdateConsumer(ctx, ingest.StreamRaw, ingest.DefaultPipelineConfig().ConsumerConfig())
	if err != nil {
		t.Fatalf("pipeline user: create consumer: %v", err)
	}

	// As wfsensor does: PubAcks on the agency's own inbox prefix.
	snc, sjs, sensorErrs := connect("demo-sensor", "demo-sensor-password", nats.CustomInboxPrefix(ingest.SensorInboxPrefix("demo")))
	if _, err := sjs.Publish(ctx, ingest.RawSubject("demo", "zeek_dns"), []byte("{}\n")); err != nil {
		t.Fatalf("demo sensor publishing its own batch: %v", err)
	}
	// Another agency's subject and the JetStream API are refused.
	for _, subj := range []string{ingest.RawSubject("doj", "zeek_dns"), "$JS.API.STREAM.DELETE." + ingest.StreamRaw, "soc.detections.demo.high"} {
		if err := snc.Publish(subj, []byte("{}\n")); err != nil {
			t.Fatal(err)
		}
		if err := snc.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-sensorErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("demo sensor publishing to %s: %v, want a permissions violation", subj, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("demo sensor could publish to %s", subj)
		}
	}

	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range msgs.Messages() {
		n++
		if m.Subject() != ingest.RawSubject("demo", "zeek_dns") {
			t.Errorf("pipeline got %s", m.Subject())
		}
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("pipeline user: ack: %v", err)
		}
	}
	if n != 1 {
		t.Fatalf("pipeline fetched %d messages, want 1 (only the demo sensor's own batch)", n)
	}
	if _, err := pjs.Publish(ctx, "soc.detections.demo.high", []byte("{}")); err != nil {
		t.Errorf("pipeline user: publish detection: %v", err)
	}
	kv, err := pjs.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "soc_rules"})
	if err != nil {
		t.Fatalf("pipeline user: rules KV: %v", err)
	}
	if _, err := kv.Put(ctx, "rule-1", []byte("title: x")); err != nil {
		t.Errorf("pipeline user: put rule: %v", err)
	}
	if _, err := kv.Get(ctx, "rule-1"); err != nil {
		t.Errorf("pipeline user: get rule: %v", err)
	}
}

// TestBundleCredentialsMatch checks that the compose and Kubernetes bundles
// log in with users the NATS accounts define, and that each sensor ships for
// the agency its user may publish: a mismatch would only show as
// permission errors at run time.
func TestBundleCredentialsMatch(t *testing.T) {
	opts, err := server.ProcessConfigFile("nats/nats-1.conf")
	if err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	for _, u := range opts.Users {
		passwords[u.Username] = u.Password
	}
	flagValue := func(args []string, name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	checkSensor := func(where string, args []string, password string) {
		t.Helper()
		user, agency := flagValue(args, "--user"), flagValue(args, "--agency")
		if user != agency+"-sensor" {
			t.Errorf("%s: sensor for agency %q logs in as %q, whose permissions cover another agency", where, agency, user)
		}
		if _, ok := passwords[user]; !ok {
			t.Errorf("%s: NATS user %q is not defined in nats/accounts.conf", where, user)
		}
		if password != "" && passwords[user] != password {
			t.Errorf("%s: password for %s does not match nats/accounts.conf", where, user)
		}
	}

	services := asMap(yamlDocs(t, "compose/compose.yaml")[0]["services"])
	chPasswords := map[string]bool{}
	for name, sv := range services {
		svc := asMap(sv)
		env := asMap(svc["environment"])
		if entry := asStrings(svc["entrypoint"]); len(entry) > 0 && strings.HasSuffix(entry[0], "/wfsensor") {
			checkSensor("compose "+name, asStrings(svc["command"]), toString(env["WFSENSOR_PASSWORD"]))
		}
		if u := toString(env["WATCHFLOOR_NATS_USER"]); u != "" {
			if passwords[u] == "" || passwords[u] != toString(env["WATCHFLOOR_NATS_PASSWORD"]) {
				t.Errorf("compose %s: NATS user %q or its password does not match nats/accounts.conf", name, u)
			}
		}
		for _, k := range []string{"WATCHFLOOR_CLICKHOUSE_PASSWORD", "CLICKHOUSE_PASSWORD", "WF_CH_PASSWORD"} {
			if v := toString(env[k]); v != "" {
				chPasswords[v] = true
			}
		}
	}
	if len(chPasswords) != 1 {
		t.Errorf("compose uses %d different ClickHouse passwords for the one watchfloor user, want 1", len(chPasswords))
	}
	for _, d := range yamlDocs(t, "k8s/sensor-syslog.yaml") {
		if d["kind"] != "Deployment" {
			continue
		}
		for _, c := range asMap(asMap(asMap(d["spec"])["template"])["spec"])["containers"].([]any) {
			checkSensor("k8s/sensor-syslog.yaml", asStrings(asMap(c)["args"]), "")
		}
	}
	vals := envValues(t, "config/wfsensor.env")
	checkSensor("config/wfsensor.env", strings.Fields(vals["WFSENSOR_ARGS"]), "")
}
