# Watchfloor — two commands on a fresh machine:
#   make run    build, start ClickHouse and the pipeline (embedded NATS), replay samples, show counts
#   make test   install what is missing, then go vet and every test (integration tests included)
# `make stop` stops what `make run` started.

GO        ?= go
DATA      ?= .data
BIN       := bin

# Local ClickHouse for `make run` and for tests: separate data dirs and ports.
CH_RUN_DIR   := $(DATA)/clickhouse
CH_RUN_TCP   ?= 19000
CH_RUN_HTTP  ?= 18123
CH_TEST_DIR  := $(DATA)/clickhouse-test
CH_TEST_TCP  ?= 19100
CH_TEST_HTTP ?= 18223

NATS_LISTEN    ?= 127.0.0.1:14222
METRICS_LISTEN ?= 127.0.0.1:19464

export GOFLAGS ?= -buildvcs=false

.PHONY: all build run stop test vet unit clickhouse clickhouse-test fuzz bench bench-e2e bench-sink bench-detect clean help deps faults

all: build

help:
	@sed -n 's/^#   //p' Makefile

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run: build
	@CH_DIR=$(CH_RUN_DIR) CH_TCP=$(CH_RUN_TCP) CH_HTTP=$(CH_RUN_HTTP) DATA=$(DATA) \
	  NATS_LISTEN=$(NATS_LISTEN) METRICS_LISTEN=$(METRICS_LISTEN) BIN=$(BIN) \
	  deploy/local/run.sh start

stop:
	@CH_DIR=$(CH_RUN_DIR) DATA=$(DATA) deploy/local/run.sh stop
	@deploy/local/clickhouse.sh stop $(CH_TEST_DIR) 2>/dev/null || true

clickhouse:
	@deploy/local/clickhouse.sh start $(CH_RUN_DIR) $(CH_RUN_TCP) $(CH_RUN_HTTP)

clickhouse-test:
	@deploy/local/clickhouse.sh start $(CH_TEST_DIR) $(CH_TEST_TCP) $(CH_TEST_HTTP)

vet:
	$(GO) vet ./...

# External servers the tests use (nats-server for the fault suite).
deps:
	@deploy/local/deps.sh

# Integration tests need the real servers: ClickHouse from the project script,
# NATS embedded in the test process. WATCHFLOOR_REQUIRE_CLICKHOUSE makes them
# fail, not skip, if the server is missing.
test: deps clickhouse-test vet
	WATCHFLOOR_TEST_CLICKHOUSE=127.0.0.1:$(CH_TEST_TCP) WATCHFLOOR_REQUIRE_CLICKHOUSE=1 \
	  $(GO) test -count=1 -timeout 15m ./...

# Long form of the fault suite (kill -9, ClickHouse and NATS restarts under
# load, sensor crash, poison records) with exact counts.
faults: deps clickhouse-test
	WATCHFLOOR_TEST_CLICKHOUSE=127.0.0.1:$(CH_TEST_TCP) WATCHFLOOR_REQUIRE_CLICKHOUSE=1 WATCHFLOOR_FAULTS_LONG=1 \
	  $(GO) test -count=1 -v -timeout 60m ./faults

# Unit tests only (no ClickHouse): integration tests skip with a message.
unit:
	$(GO) test ./...

# Every fuzz target in the module, FUZZTIME each (make fuzz FUZZTIME=10s).
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) deploy/local/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./normalize ./detect ./ingest/... ./bench/...

# End to end: sensor -> JetStream -> watchfloor run -> ClickHouse, measured.
#   make bench-e2e E2E_DURATION=60s E2E_RATE=0 E2E_RULES=../shared/corpus/sigma/rules
E2E_DURATION ?= 60s
E2E_RATE     ?= 0
E2E_RULES    ?= detect/rules
bench-e2e: build clickhouse
	$(GO) build -o $(BIN)/ ./bench/cmd/wfbench
	$(BIN)/wfbench --watchfloor $(BIN)/watchfloor --clickhouse 127.0.0.1:$(CH_RUN_TCP) \
	  --clickhouse-pid-file $(CH_RUN_DIR)/pid --duration $(E2E_DURATION) --rate $(E2E_RATE) \
	  --rules $(E2E_RULES) --data-dir $(DATA)/wfbench

# The sink alone: DNS events through sink.Sink.Write into the local ClickHouse
# (rollup views on), reporting rows/s, CPU per row of client and server, peak
# RSS, parts per partition over time and the compression of events.
#   make bench-sink SINK_DURATION=60s SINK_ARGS="--batch-rows 50000 --compression lz4"
SINK_DURATION ?= 30s
SINK_ARGS     ?= --batch-rows 200000 --compression none
bench-sink: clickhouse
	$(GO) build -o $(BIN)/ ./bench/cmd/wfbench
	$(BIN)/wfbench sink --clickhouse 127.0.0.1:$(CH_RUN_TCP) --clickhouse-pid-file $(CH_RUN_DIR)/pid \
	  --duration $(SINK_DURATION) $(SINK_ARGS)

# The rule engine alone, on one core: every rule of DETECT_RULES vs its first
# 30 process_creation rules, on generated Sysmon process-creation events.
#   make bench-detect DETECT_RULES=../shared/corpus/sigma/rules/windows DETECT_DURATION=20s
DETECT_RULES    ?= ../shared/corpus/sigma/rules/windows
DETECT_DURATION ?= 10s
bench-detect:
	$(GO) build -o $(BIN)/ ./bench/cmd/wfbench
	$(BIN)/wfbench detect --rules $(DETECT_RULES) --duration $(DETECT_DURATION)

clean: stop
	rm -rf $(BIN) $(DATA)
