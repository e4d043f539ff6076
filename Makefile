# Spillway. `make run` starts a node with the built-in defaults; `make test`
# installs what the tests need and runs them all.
GO      ?= go
GOFLAGS ?=
BIN     := bin/spillway

.PHONY: all build run test test-deps test-go test-scale lint bench bench-full bench-go clip clean bench-dataplane

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN) ./cmd/spillway

run: build
	./$(BIN)

# Installs the test dependencies (Debian packages, npm packages), then runs
# vet and every Go test under the race detector. The end-to-end tests drive
# Janode and headless Chromium from Go. Packages run one at a time (-p 1):
# the end-to-end tests stream real time and must not share two cores with
# the SRTP differential tests.
test: test-deps lint test-go test-scale

test-deps:
	./scripts/test-deps.sh

test-go:
	$(GO) test -race -count=1 -p 1 -timeout 25m ./...

# 200 viewers in one process; without -race, which would only slow it down.
test-scale:
	$(GO) test -count=1 -timeout 10m -run 'TestTwoHundredViewers' -v ./tests/e2e/

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Janus (0 and 1 helper threads) and Spillway (queue and socket mode), each
# pinned to one server core, against viewers joining through the Janus API
# in network namespaces: the most viewers of a 2 Mbit/s stream each holds,
# with the tc sink, a QoE sample, CSV and plots in bin/bench (root;
# installs Janus when missing; docs/benchmarks.md). BENCH_ARGS go to the
# command.
bench:
	GO=$(GO) ./scripts/bench.sh $(BENCH_ARGS)

# The paper-style sweep: bitrates from 0.5 to 8 Mbit/s, both sinks, finer
# steps (an hour or more).
bench-full:
	GO=$(GO) ./scripts/bench.sh -rates 0.5,1,2,4,8 -sinks tc,xdp -resolution 0.03 -window 4s $(BENCH_ARGS)

# Go micro-benchmarks of the data plane (ns/op, allocs/op).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./dataplane/...

# One data-plane worker on one core, 1000 synthetic viewers, against the
# machine's limit and queue mode, in network namespaces with an XDP sink
# (root, about 5 minutes; docs/benchmarks.md). BENCH_ARGS go to the command.
bench-dataplane:
	GO=$(GO) ./scripts/bench-dataplane.sh $(BENCH_ARGS)

# Regenerates the embedded demo clip (needs ffmpeg).
clip:
	./scripts/make-demo-clip.sh

clean:
	rm -rf bin
