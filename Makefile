# natlab: sudo make demo runs the main job; sudo make test passes the tests.
# Both install what they need (scripts/deps.sh) on a Debian machine.

GO = $(shell scripts/go.sh)
export CGO_ENABLED := 0

# What natlab version prints (internal/buildinfo): git's name for the
# commit (make release VERSION=v1.2.0 names it), the commit, and the build
# time, SOURCE_DATE_EPOCH if set (a rebuild that matches a release byte for
# byte sets it to the release's).
VERSION := $(or $(VERSION),$(shell git describe --tags --always --dirty 2>/dev/null),dev)
COMMIT := $(or $(COMMIT),$(shell git rev-parse HEAD 2>/dev/null))
DATE := $(or $(DATE),$(shell date -u -d "@$${SOURCE_DATE_EPOCH:-$$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ))
STAMP = -X github.com/natlab/natlab/internal/buildinfo.version=$(VERSION) \
	-X github.com/natlab/natlab/internal/buildinfo.commit=$(COMMIT) \
	-X github.com/natlab/natlab/internal/buildinfo.date=$(DATE)

.PHONY: all build deps test-deps demo test examples vm-test vm-course lint fuzz bench bench-quick soak race clean man cross release generate install uninstall

all: build

deps:
	@scripts/deps.sh demo >/dev/null

test-deps:
	@scripts/deps.sh test >/dev/null

build: deps
	$(GO) build -ldflags '$(STAMP)' -o bin/natlab ./cmd/natlab

# natlab on the PATH, so that the "sudo natlab ..." natlab and its docs
# print works as written: $(DESTDIR)$(PREFIX)/bin/natlab, /usr/local/bin
# unless PREFIX says otherwise; DESTDIR stages it for a package.
PREFIX ?= /usr/local
install: build
	install -d '$(DESTDIR)$(PREFIX)/bin'
	install -m 0755 bin/natlab '$(DESTDIR)$(PREFIX)/bin/natlab'

uninstall:
	rm -f '$(DESTDIR)$(PREFIX)/bin/natlab'

# The main job on a built-in scenario: build the binary, bring up a lab with
# two NATs, show it, reach the internet through a NAT, tear it down.
demo: build
	@scripts/demo.sh bin/natlab

# Everything CI checks: formatting, vet, staticcheck, unit tests and, as
# root, the integration tests on real namespaces, the examples' tests
# (make examples), the kernel-level ones again on Debian's own kernel in a
# VM (where apt has it; about three minutes, one test at a time), the
# course VM's provisioning and tour (vm-course), and a short fuzz run.
# The kernel: Debian 12's default (6.1), what a stock Debian 12 runs and
# the oldest natlab is tested on (it refuses constructs newer kernels
# take: docs/kernels.md). Debian 12's 6.12 passes too; to run both:
# make test VM_TEST_KERNELS="linux-image-amd64 linux-image-6.12-amd64".
VM_TEST_KERNELS ?= linux-image-amd64

test: test-deps lint
	$(MAKE) --no-print-directory cross
	$(GO) test -count=1 -parallel 8 ./...
	$(MAKE) --no-print-directory examples
	@# The course VM beside the kernel tests' VM: each emulates on one host
	@# thread of its own (TCG, thread=single), so they share the two cores
	@# rather than wait for each other. Their guests mostly wait on timers,
	@# which left a core and a half idle (qemu at 56% of one, measured), so
	@# the race detector's run and the fuzzers run beside them at the
	@# lowest priority, which yields to the guests whenever they run. The
	@# outputs follow, the course's first.
	@course=$$(mktemp); others=$$(mktemp); \
	  $(MAKE) --no-print-directory vm-course VM_OPTIONAL=1 >$$course 2>&1 & cpid=$$!; \
	  nice -n 19 sh -c '$(MAKE) --no-print-directory race && $(MAKE) --no-print-directory fuzz FUZZTIME=100000x' >$$others 2>&1 & opid=$$!; \
	  rc=0; for k in $(VM_TEST_KERNELS); do $(MAKE) --no-print-directory vm-test VM_OPTIONAL=1 VM_KERNEL_PACKAGE=$$k || { rc=1; break; }; done; \
	  wait $$cpid || rc=1; cat $$course; \
	  wait $$opid || rc=1; cat $$others; rm -f $$course $$others; exit $$rc
	$(MAKE) --no-print-directory bench-quick

# The examples of natlab in other projects' tests (examples/*/README.md):
# each is a Go module of its own, so that a real P2P stack's dependencies
# stay out of natlab's go.mod, and natlab's own go test, vet and
# staticcheck of ./... do not descend into them, so this vets and checks
# them too (with natlab's staticcheck version, which their modules do not
# list as a tool). Their tests bring labs up: run as root. They build their
# programs with the go on PATH. make examples takes about 40 s here for
# libp2p and 16 s for webrtc with a warm build cache, about 100 s more when
# it compiles go-libp2p, pion/webrtc and staticcheck first (2 cores, loaded).
EXAMPLES = examples/libp2p examples/webrtc
examples: test-deps
	@sc=$$($(GO) list -m -f '{{.Version}}' honnef.co/go/tools) && \
	for e in $(EXAMPLES); do \
	  echo "vet, staticcheck and test $$e"; \
	  $(GO) -C $$e vet ./... || exit 1; \
	  $(GO) -C $$e run honnef.co/go/tools/cmd/staticcheck@$$sc ./... || exit 1; \
	  PATH="$(dir $(abspath $(GO))):$$PATH" $(GO) -C $$e test -count=1 -parallel 4 ./... || exit 1; \
	done

# natlab's kernel-level tests (internal/vmtest/tests.txt) on Debian's own
# kernel, booted in qemu with an initramfs of the static test binaries:
# proof that labs work on a stock distribution kernel, which builds netem,
# nftables and the rest as modules, and not only on this machine's.
# Needs no root once qemu is installed; touches nothing of the host.
# VM_TESTS, VM_RUN, VM_KERNEL_PACKAGE and more: scripts/vm-test.sh.
vm-test:
	@scripts/vm-test.sh

# The coursework VM for real: the Vagrantfile's box built from Debian's
# packages, vagrant/provision.sh run in it, and sudo natlab tour --no-pause
# as the vagrant user on the box's own kernel (Debian 12's, in qemu).
# Needs root; the box is cached outside the repository. scripts/vm-course.sh.
vm-course:
	@scripts/vm-course.sh

# The packages that build labs, run services and agents in one process,
# under the race detector (which needs cgo, so gcc). It found a map read
# while other goroutines of a bring-up wrote it, which crashed a CI run
# once in many, and a tunnel goroutine using a node after it was closed.
# The command-line tests run the binary, where the detector sees nothing.
# The page's browser tests (TestBrowser*) are left out: they drive chromium
# through every act at three window sizes, three minutes under the
# detector for nothing it can see (the browser is another process), while
# the page's server is raced by the ui package's other tests.
race: test-deps
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 5m -skip '^TestBrowser' $$($(GO) list ./... | grep -v -e '/internal/cli$$' -e '/bench$$')

lint: deps
	@out=$$($(GO)fmt -l $$(find . -name '*.go' -not -path './.tools/*' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) tool actionlint
	@vagrant/lint.sh

# Every fuzzer of the parsers and decoders that face untrusted input, for
# FUZZTIME each (CI runs a short round; the seeds are in testdata/). CI's
# round is a count of inputs, not a time: with a time, Go 1.26's fuzzing
# coordinator now and then fails a target with "context deadline exceeded"
# as the time runs out, with no failing input (golang/go#75804, fixed in
# Go 1.27); a count has no deadline to race.
FUZZTIME ?= 30s
FUZZERS = ./topology:FuzzParse ./stunserver:FuzzAnswer ./stunclient:FuzzParse ./rendezvous:FuzzHandler ./pcp:FuzzParseRequest
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
	$(GO) build -o bin/natlab-floor ./bench/floor
	bin/natlab-bench -natlab bin/natlab -floor bin/natlab-floor -out bench/results.json

# The same at small sizes, for CI: the benchmark code must keep working;
# its ratios say little.
bench-quick: build
	$(GO) build -o bin/natlab-bench ./bench
	$(GO) build -o bin/natlab-floor ./bench/floor
	bin/natlab-bench -natlab bin/natlab -floor bin/natlab-floor -quick -no-install -out ""

# 500 cycles of up, a small run and down in one process, as root, checking nothing piles up.
soak: deps
	NATLAB_SOAK=500 $(GO) test -count=1 -timeout 30m -v -run '^TestSoakUpRunDown$$' ./lab

# natlab's man pages, written from the commands' own help: man/man1/*.1
# (man man/man1/natlab-up.1 reads one).
man: deps
	$(GO) run -ldflags '$(STAMP)' ./internal/mangen man/man1

# CI's cross-compile check: everything builds and links for linux/arm64
# too. The binaries go to a temporary directory; only that they build counts.
cross: deps
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	  echo "cross-compile for linux/arm64" && \
	  GOOS=linux GOARCH=arm64 $(GO) build -o "$$d/" ./...

# Static binaries for each of RELEASE_PLATFORMS, stamped with the version,
# in dist/: natlab-VERSION-OS-ARCH, the man pages (natlab-VERSION-man.tar.gz)
# and SHA256SUMS of them all.
RELEASE_PLATFORMS = linux/amd64 linux/arm64
release: deps
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(RELEASE_PLATFORMS); do \
	  out=dist/natlab-$(VERSION)-$${p%/*}-$${p#*/}; echo "build $$out"; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -ldflags '-s -w $(STAMP)' -o $$out ./cmd/natlab; \
	done
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	  $(GO) run -ldflags '$(STAMP)' ./internal/mangen $$d/man1 >/dev/null; \
	  tar -C $$d --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$$(date -d $(DATE) +%s) -cf - man1 \
	    | gzip -n > dist/natlab-$(VERSION)-man.tar.gz
	cd dist && sha256sum natlab-* > SHA256SUMS && cat SHA256SUMS

# The scenario format's JSON Schema (schema/natlab.schema.json) and its
# reference (docs/reference.md), from the Go types in topology/format.go;
# a test fails when the committed ones are not what this writes.
generate:
	$(GO) run ./internal/schemagen

clean:
	rm -rf bin dist man
