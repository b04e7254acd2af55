# Metis build and test. Prerequisites: Go and gcc (cgo for SQLite). Every
# other tool a test needs (Claude Code and the Node SDKs from npm, Debian's
# Chromium for the browser tests and its sqlite3 shell) is installed by the
# targets below.

SHELL := /bin/bash
comma := ,
export CGO_ENABLED := 1

# Versions and flags come from xcaddy.json, the one place to bump them.
CADDY_VERSION  := $(shell sed -n 's/.*"caddy_version": *"\([^"]*\)".*/\1/p' xcaddy.json)
XCADDY_VERSION := $(shell sed -n 's/.*"x_xcaddy_version": *"\([^"]*\)".*/\1/p' xcaddy.json)
BUILD_FLAGS    := $(shell sed -n 's/.*"build_flags": *"\([^"]*\)".*/\1/p' xcaddy.json)
# On Linux, start the image 4 KB past a 2 MB boundary so that the kernel
# cannot map a freshly linked binary 2 MB at a time (see xcaddy.json's notes;
# GNU ld only, hence Linux only).
ifeq ($(shell go env GOOS),linux)
BUILD_FLAGS    := $(subst -w -s,-w -s -extldflags=-Wl$(comma)-Ttext-segment=0x401000,$(BUILD_FLAGS))
endif
XCADDY         := go run github.com/caddyserver/xcaddy/cmd/xcaddy@$(XCADDY_VERSION)
# staticcheck finds what go vet does not (dead stores, unused fields,
# self-comparisons); pinned so that a new release cannot fail a clean CI run.
STATICCHECK    := v0.8.2
MODULE         := github.com/metisgateway/metis
GO_SOURCES     := $(shell find . -name '*.go' -not -path './tools/*' -not -path '*/node_modules/*') go.mod go.sum $(shell find dashboard/dist -type f)

.PHONY: run build test vet unit fuzz smoke examples browser deps bench clean

## run: build ./caddy and serve Caddyfile.example (gateway :8422, analytics :8421)
run: caddy
	./caddy run --config Caddyfile.example --adapter caddyfile

build: caddy

caddy: $(GO_SOURCES) xcaddy.json
	XCADDY_GO_BUILD_FLAGS="$(BUILD_FLAGS)" $(XCADDY) build $(CADDY_VERSION) \
		--output ./caddy --with $(MODULE)@v0.0.0=.

## test: everything CI runs
test: deps vet unit fuzz smoke examples browser

deps:
	bash tools/install.sh
	bash dashboard/e2e/install.sh

vet:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	go vet ./...
	CGO_ENABLED=0 go vet ./...  # the pure-Go build (store/nocgo.go) and its tests
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

unit:
	METIS_REQUIRE_E2E=1 go test -race -count=1 -timeout 20m ./...

# Each fuzz target runs briefly; the corpus is seeded from testdata/fixtures.
FUZZ_TIME ?= 4s
fuzz:
	FUZZ_TIME=$(FUZZ_TIME) bash tools/fuzz.sh

## smoke: the built binary lists every module, validates the example, has its command
smoke: caddy
	@set -e; mods=$$(./caddy list-modules); \
	for m in metis http.handlers.metis_gateway http.handlers.metis_analytics; do \
		grep -qx "$$m" <<<"$$mods" || { echo "module $$m missing"; exit 1; }; done
	./caddy build-info | grep -q go-sqlite3
	tmp=$$(mktemp -d); METIS_DB=$$tmp/metis.db ./caddy validate --config Caddyfile.example --adapter caddyfile; rm -rf $$tmp
	./caddy metis --help >/dev/null
	./caddy metis issue-key --help >/dev/null
	bash testdata/smoke.sh ./caddy

## examples: the Go and Node client examples against the built gateway
examples: caddy
	bash examples/gateway/run-with-gateway.sh ./caddy

## browser: the dashboard in Debian's Chromium against a gateway-filled database
browser: caddy
	bash dashboard/e2e/run-with-gateway.sh ./caddy

bench: caddy stock-caddy
	go run ./bench/cmd/metisbench -caddy ./caddy -stock-caddy ./stock-caddy

# Stock Caddy of the same version and build flags, linked by the external
# linker as cgo (go-sqlite3) forces for ./caddy: the memory baseline.
stock-caddy: xcaddy.json
	XCADDY_GO_BUILD_FLAGS="$(subst -w -s,-w -s -linkmode=external,$(BUILD_FLAGS))" \
		$(XCADDY) build $(CADDY_VERSION) --output ./stock-caddy

clean:
	rm -f caddy stock-caddy
