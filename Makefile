# tollgate's front door: `make run` starts a working gateway, `make test` runs every test.
GO        ?= go
BIN       := bin/tollgate
LISTEN    ?= 127.0.0.1:4000
FUZZTIME  ?= 3s

# The master key and the local stores `make run` uses unless you set your own.
export LITELLM_MASTER_KEY ?= sk-tollgate-dev
export DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
export REDIS_URL ?= redis://127.0.0.1:6379/0

# With OPENAI_API_KEY set, `make run` fronts real OpenAI models; without it, every alias is
# served by the built-in fake OpenAI-compatible provider.
ifdef OPENAI_API_KEY
RUN_CONFIG ?= deploy/examples/openai.yaml
RUN_FLAGS  ?=
else
RUN_CONFIG ?= deploy/examples/fake.yaml
RUN_FLAGS  ?= --fake-provider 127.0.0.1:4010
endif

.PHONY: help build run test fuzz bench check envoy

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'

build: ## build bin/tollgate
	$(GO) build -o $(BIN) ./cmd/tollgate

run: build ## run the gateway on http://127.0.0.1:4000 (LISTEN=host:port to change): Envoy emulator + tollgate, local Redis and Postgres
	scripts/services.sh
	$(BIN) dev --config $(RUN_CONFIG) --listen $(LISTEN) $(RUN_FLAGS)

test: build ## run every test (unit, integration, end to end) and a short fuzz of each parser
	scripts/services.sh
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz

fuzz: ## run each fuzz target for FUZZTIME (default 3s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg > /tmp/tollgate-fuzz.log 2>&1 || { cat /tmp/tollgate-fuzz.log; exit 1; }; \
	  done; \
	done

bench: ## run the benchmarks (numbers go in BENCHMARKS.md)
	$(GO) test -run='^$$' -bench=. -benchmem ./...

# envoy.yaml never holds provider credentials (tollgate injects them per attempt), so the
# article's config renders and checks with placeholder keys.
EXAMPLE_ENV := OPENAI_API_KEY=placeholder ANTHROPIC_API_KEY=placeholder

check: build ## gofmt, go vet, and tollgate check of the article's config against envoy/envoy.yaml
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(EXAMPLE_ENV) $(BIN) check --config deploy/examples/article.yaml --envoy envoy/envoy.yaml

envoy: build ## re-render envoy/envoy.yaml from the article's config (deploy/examples/article.yaml)
	$(EXAMPLE_ENV) $(BIN) envoy --config deploy/examples/article.yaml > envoy/envoy.yaml
