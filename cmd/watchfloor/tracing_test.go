package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOTelConfig(t *testing.T) {
	tests := []struct {
		name    string
		give    otelConfig
		wantErr string // "" means valid
		wantURL string
	}{
		{"off", otelConfig{ServiceName: "watchfloor"}, "", ""},
		{"host only", otelConfig{Endpoint: "http://otel:4318", ServiceName: "w"}, "", "http://otel:4318/v1/traces"},
		{"full path", otelConfig{Endpoint: "https://otel.soc:4318/custom/traces", ServiceName: "w", SampleRatio: 0.1}, "", "https://otel.soc:4318/custom/traces"},
		{"no scheme", otelConfig{Endpoint: "otel:4318", ServiceName: "w"}, "otel.endpoint", ""},
		{"grpc scheme", otelConfig{Endpoint: "grpc://otel:4317", ServiceName: "w"}, "otel.endpoint", ""},
		{"ratio", otelConfig{SampleRatio: 2, ServiceName: "w"}, "otel.sample-ratio", ""},
		{"no name", otelConfig{}, "otel.service-name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("validate() = %v, want an error naming %s", err, tt.wantErr)
			}
			if tt.wantURL != "" {
				if got := tt.give.tracesURL(); got != tt.wantURL {
					t.Errorf("tracesURL() = %q, want %q", got, tt.wantURL)
				}
			}
		})
	}
}

// TestTracerProviderExportsOTLP checks the wiring of --otel.endpoint: a
// span ends up as an OTLP/HTTP protobuf POST on /v1/traces.
func TestTracerProviderExportsOTLP(t *testing.T) {
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s %s %s %d", r.Method, r.URL.Path, r.Header.Get("Content-Type"), len(body))
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ctx := context.Background()
	tp, shutdown, err := newTracerProvider(ctx, otelConfig{Endpoint: srv.URL, SampleRatio: 1, ServiceName: "watchfloor-test"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(ctx, "one")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case req := <-got:
		if !strings.HasPrefix(req, "POST /v1/traces application/x-protobuf ") || strings.HasSuffix(req, " 0") {
			t.Errorf("collector got %q, want a non-empty protobuf POST on /v1/traces", req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no export request within 5s")
	}
}
