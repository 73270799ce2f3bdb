package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// otelConfig is where the pipeline's spans go.
type otelConfig struct {
	Endpoint    string  // OTLP/HTTP traces URL; "" turns tracing off
	SampleRatio float64 // share of batches without a sampled traceparent that are traced anyway
	ServiceName string
}

// validate names the flag of the first bad setting.
func (c otelConfig) validate() error {
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) {
		return fmt.Errorf("otel.sample-ratio must be between 0 and 1, got %g", c.SampleRatio)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("otel.endpoint %q must be an http:// or https:// URL such as http://otel-collector:4318", c.Endpoint)
		}
	}
	if c.ServiceName == "" {
		return fmt.Errorf("otel.service-name must not be empty")
	}
	return nil
}

// tracesURL is the endpoint with the OTLP traces path when none is given.
func (c otelConfig) tracesURL() string {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return c.Endpoint
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String()
}

// newTracerProvider returns a no-op provider when no endpoint is set.
// Otherwise spans are batched and exported over OTLP/HTTP; sampling follows
// the sensor's decision (the traceparent's sampled flag) and samples
// otel.sample-ratio of the batches that arrive without one.
func newTracerProvider(ctx context.Context, c otelConfig, instance string) (trace.TracerProvider, func(context.Context) error, error) {
	if c.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.tracesURL()), otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("otel.endpoint %s: %w", c.Endpoint, err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", c.ServiceName),
		attribute.String("service.version", version),
		attribute.String("service.instance.id", instance),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
	)
	return tp, tp.Shutdown, nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
