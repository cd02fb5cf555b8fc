# dmfm — see README.md. `make help` lists the targets.

GO        ?= go
BIN       := bin
CACHE     := $(CURDIR)/.cache
STATICCHECK_VERSION := v0.8.2
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOBUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

# Native lab mode when this kernel has device-mapper and we are root;
# otherwise every kernel test runs inside `dmfm lab run`.
HOST_HAS_DM := $(shell [ "$$(id -u)" = 0 ] && grep -qw device-mapper /proc/misc 2>/dev/null && echo yes)
# Packages with kernel tests; the testscript suites run after them, on their
# own, so their one-line-per-script log streams (go test shows it only when
# run in the package's directory). Natively, packages run one at a time:
# `dmfm lab clean` in one must not meet another's devices.
LAB_PKGS    = $(shell ci/lab-packages.sh)
LAB_GO_PKGS = $(filter-out ./testscripts,$(LAB_PKGS))
JUNIT_DIR   := $(CACHE)/junit
LAB_EXEC    = $(CURDIR)/$(BIN)/dmfm lab run --leak-check --share $(JUNIT_DIR) --
# The testscripts use the binaries built here, and write JUnit XML for CI.
LAB_ENV     = PATH=$(CURDIR)/$(BIN):$$PATH DMFM_BIN_DIR=$(CURDIR)/$(BIN) DMFM_JUNIT=$(JUNIT_DIR)/testscripts.xml
LAB_TIMEOUT ?= 20m

.PHONY: help all deps build vet staticcheck unit lab-test test demo bench clean
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

all: build ## build every command into bin/

deps: ## install the system packages (apt) the build, tests and lab need
	@bash ci/install-deps.sh

TOOLS := $(patsubst tools/%/main.go,$(BIN)/%,$(wildcard tools/*/main.go))

build: $(TOOLS)

$(BIN)/%: FORCE
	@mkdir -p $(BIN)
	$(GOBUILD) -o $@ ./tools/$*

FORCE:

vet: ## gofmt, go vet (with and without -tags lab) and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags lab ./...
	$(MAKE) --no-print-directory staticcheck

staticcheck:
	@mkdir -p $(CACHE)/tools
	@[ -x $(CACHE)/tools/staticcheck ] || GOBIN=$(CACHE)/tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(CACHE)/tools/staticcheck ./...
	$(CACHE)/tools/staticcheck -tags lab ./...

unit: ## host tests: everything that needs no device-mapper
	$(GO) test -count=1 ./...

lab-test: build ## kernel tests and testscript suites, in the lab VM unless this host has dm
ifeq ($(HOST_HAS_DM),yes)
	@echo "lab-test: this kernel has device-mapper; running natively"
	@mkdir -p $(JUNIT_DIR)
	$(LAB_ENV) $(GO) test -p 1 -count=1 -tags lab -timeout $(LAB_TIMEOUT) $(LAB_GO_PKGS)
	cd testscripts && $(LAB_ENV) $(GO) test -count=1 -tags lab -timeout $(LAB_TIMEOUT)
else
	@echo "lab-test: no device-mapper on this host; each package runs in a lab VM ($(BIN)/dmfm lab run)"
	@$(BIN)/dmfm lab kernel >/dev/null
	@mkdir -p $(JUNIT_DIR)
	$(LAB_ENV) $(GO) test -count=1 -tags lab -timeout $(LAB_TIMEOUT) -exec '$(LAB_EXEC)' $(LAB_GO_PKGS)
	cd testscripts && $(LAB_ENV) $(GO) test -count=1 -tags lab -timeout $(LAB_TIMEOUT) -exec '$(LAB_EXEC)'
endif

test: deps vet unit lab-test ## everything: vet, host tests and lab tests

demo: deps build ## show the main job working: a per-file I/O report on a real dm volume
ifeq ($(HOST_HAS_DM),yes)
	PATH=$(CURDIR)/$(BIN):$$PATH bash ci/demo.sh
else
	@echo "demo: no device-mapper on this host; running in the lab VM"
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dmfm lab run -- bash $(CURDIR)/ci/demo.sh
endif

bench: deps build ## benchmarks in the lab, side by side with the reference tools
	bash ci/bench.sh

clean: ## remove build output (the kernel cache in ~/.cache/dmfm stays)
	rm -rf $(BIN) $(CACHE)
