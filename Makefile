# asyncd: `make run` builds and serves examples/asyncd.yaml; `make test` runs
# every check CI runs. Nothing needs installing first beyond Go 1.26.

GO        ?= go
BIN       := bin/asyncd
PKGS      := ./...
CONFIG    ?= examples/asyncd.yaml
FUZZTIME  ?= 10m

.PHONY: all build run test test-short vet fmt-check unit allocs bench-unit fuzz-smoke bench soak fuzz clean docs

all: build

# The version --version and the "asyncd starting" line print: git's
# description of the checkout (tag, or commit, with -dirty for uncommitted
# changes). Without git it stays empty, and the binary prints the version
# the Go toolchain stamped into it (the module version for go install).
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null)

build:
	$(GO) build -ldflags "-X github.com/asyncd/asyncd/cli.Version=$(VERSION)" -o $(BIN) ./cmd/asyncd

run: build
	./$(BIN) -c $(CONFIG)

# make test: formatting, vet, the race-enabled unit and end-to-end suites
# (conformance vectors included), the benchmark tools' own tests, and a
# short run of every fuzz target.
#
# The tests' knobs are environment variables of their own namespace,
# ASYNCDTEST_, apart from asyncd's settings (ASYNCD_<KEY>); the asyncd
# binary the tests start never sees them (internal/testbin gives it a
# clean environment):
#   ASYNCDTEST_BACKENDS=epoll  the loop backends the suites run on; unset,
#                              every backend, and one that cannot run here
#                              fails. Its old name, ASYNCD_TEST_BACKENDS,
#                              is still read.
#   ASYNCDTEST_SOAK=1, ASYNCDTEST_SOAK_DURATION, ASYNCDTEST_SOAK_RELOAD_EVERY:
#                              the long soak (make soak, below).
test: fmt-check vet unit allocs bench-unit fuzz-smoke

# make test-short: the quick inner loop, go test -short ./... (under a
# minute on 2 shared cores). -short skips, each with a message, what takes
# seconds: every test that builds or runs the asyncd binary (e2e/, most of
# deploy/), the conformance vectors over sockets and through the proxy,
# the engine's and the reliability suite's timer, flow-control and
# resource-exhaustion cases, the worker classes' blocking tests and the
# random heads of httpparse's TestFastPathsAgree. make test does not pass
# -short: it runs everything.
test-short:
	$(GO) test -short $(PKGS)

fmt-check:
	@files=$$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go'); \
	if [ -z "$$files" ]; then echo "fmt-check: no Go files found"; exit 1; fi; \
	out=$$(gofmt -l $$files); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -parallel 32 -timeout 20m $(PKGS)

# The allocation counts (every test named *Alloc*: the hot path, refusals,
# the router's answers, the PROXY header and forwarded-header parsers)
# again without the race detector, under which sync.Pool drops items on
# purpose and some of them skip: here none does.
allocs:
	$(GO) test -count=1 -run Alloc $(PKGS)

# bench/peers is its own Go module, which the root ./... does not enter: vet
# it and run its unit tests (report, chart, results, probe, rawhttp,
# procmem, idleconns, pipeflood). gain-raw links only with
# -checklinkname=0. Its conformance package, which builds and starts every
# peer and runs wrk against it (minutes, and wants bin/asyncd), is left
# out here by name, not skipped: run it with
# `cd bench/peers && go test -ldflags=-checklinkname=0 ./conformance/`.
BENCH_GOFLAGS := -ldflags=-checklinkname=0

bench-unit:
	cd bench/peers && $(GO) vet ./... && \
	  $(GO) test -race -count=1 $(BENCH_GOFLAGS) -timeout 5m $$($(GO) list ./... | grep -v '/conformance$$')

# Each fuzz target for a fixed count of executions (a count, not a
# duration: see scripts/fuzz.sh): a regression net, not a search.
fuzz-smoke:
	@./scripts/fuzz.sh 30000x

# The long runs: FUZZTIME per target.
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

bench: build
	./bench/run.sh

# make soak: the long runs, on every backend (ASYNCDTEST_BACKENDS narrows).
# First the reliability attacks at full size without the race detector
# (make test runs them under -race, which scales TestAbruptResetsLeakNothing
# down from 10,000 resets per backend to 2,000): resets, slow clients,
# pipeline flood, slow reader, descriptor exhaustion and the handler
# faults (23 s on 2 loaded cores), bounded by -timeout. Then TestSoakReloads
# (e2e/soak_test.go): the real binary under load with SIGHUP reloads, 5 minutes per backend
# (ASYNCDTEST_SOAK_DURATION, ASYNCDTEST_SOAK_RELOAD_EVERY change it).
SOAK_ATTACKS := ^(TestAbruptResetsLeakNothing|TestSlowClientsAreCutOffOthersServed|TestPipelineFloodWithoutReading|TestSlowReaderOfLargeStream|TestDescriptorExhaustion|TestHandlerPanics|TestTruncatedStreamIsVisible|TestContextAfterClientLeft|TestHandlerNeverReturns|TestHandlerWritesAfterClientLeft)$$

soak: build
	$(GO) test -run '$(SOAK_ATTACKS)' -count=1 -timeout 10m -v ./reliability/
	ASYNCDTEST_SOAK=1 $(GO) test -run Soak -count=1 -timeout 60m -v ./e2e/

docs:
	$(GO) run ./internal/config/gendocs > docs/configuration.md

clean:
	rm -rf bin
