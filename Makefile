# natlab: sudo make demo runs the main job; sudo make test passes the tests.
# Both install what they need (scripts/deps.sh) on a Debian machine.

GO = $(shell scripts/go.sh)
export CGO_ENABLED := 0

.PHONY: all build deps test-deps demo test lint fuzz bench bench-quick soak clean

all: build

deps:
	@scripts/deps.sh demo >/dev/null

test-deps:
	@scripts/deps.sh test >/dev/null

build: deps
	$(GO) build -o bin/natlab ./cmd/natlab

# The main job on a built-in scenario: build the binary, bring up a lab with
# two NATs, show it, reach the internet through a NAT, tear it down.
demo: build
	@scripts/demo.sh bin/natlab

# Everything CI checks: formatting, vet, staticcheck, unit tests and, as
# root, the integration tests on real namespaces, and a short fuzz run.
test: test-deps lint
	$(GO) test -count=1 -parallel 8 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s
	$(MAKE) --no-print-directory bench-quick

lint: deps
	@out=$$($(GO)fmt -l $$(find . -name '*.go' -not -path './.tools/*' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# Every fuzzer of the parsers and decoders that face untrusted input, for
# FUZZTIME each (CI runs a short round; the seeds are in testdata/).
FUZZTIME ?= 30s
FUZZERS = ./topology:FuzzParse ./stunserver:FuzzAnswer ./stunclient:FuzzParse ./rendezvous:FuzzHandler
fuzz: deps
	@for f in $(FUZZERS); do \
	  echo "fuzz $$f for $(FUZZTIME)"; \
	  out=$$($(GO) test -run='^$$' -fuzz="^$${f#*:}$$" -fuzztime=$(FUZZTIME) "$${f%%:*}" 2>&1) || { echo "$$out"; exit 1; }; \
	  echo "$$out" | tail -n 1; \
	done

# natlab against its goals and its peers (a script of ip and nft commands,
# Mininet, a floor of bare netlink), each measured in the same run: prints
# a table of ratios with OK or SHORT and writes bench/results.json. Needs
# root; installs iperf3 and mininet (without Open vSwitch) if missing.
# docs/performance.md explains the numbers.
bench: build
	$(GO) build -o bin/natlab-bench ./bench
	bin/natlab-bench -natlab bin/natlab -out bench/results.json

# The same at small sizes, for CI: the benchmark code must keep working;
# its ratios say little.
bench-quick: build
	$(GO) build -o bin/natlab-bench ./bench
	bin/natlab-bench -natlab bin/natlab -quick -no-install -out ""

# 500 cycles of up, a small run and down in one process, as root, checking nothing piles up.
soak: deps
	NATLAB_SOAK=500 $(GO) test -count=1 -timeout 30m -v -run '^TestSoakUpRunDown$$' ./lab

clean:
	rm -rf bin
