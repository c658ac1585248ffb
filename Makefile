# Nebula (Go). `make run` starts everything on this machine; `make test` runs
# every test (what CI runs). Both install what they need.
GO      ?= go
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA    ?= nebula-data

.PHONY: run test deps lint bench soak fuzz kcat-demo build agent clean screenshots

run: build ## the embedded default: broker + manager on this machine
	./bin/nebula dev --data-dir $(DATA)

build:
	$(GO) build -o bin/nebula ./cmd/nebula

agent: ## the device agent alone (`nebula-agent worker`): a third of the binary, half the memory
	$(GO) build -tags agent -o bin/nebula-agent ./cmd/nebula

test: deps lint ## every test, with the race detector
	$(GO) test -race -count=1 -timeout 30m ./...

# Debian packages the tests use (command:package): kcat (a Kafka client
# nobody here wrote), docker-registry (a local registry for the worker's
# pull tests), docker-compose (validates deploy/kafka/compose*.yaml),
# openssl (encrypted keys and certificates of the Kafka TLS tests), nginx
# (deploy/kafka/nginx-lb.conf in front of two managers; the baseline of the
# /info benchmark), chromium (the web console's tests drive it headless).
DEBS := wrk:wrk kcat:kcat docker-registry:docker-registry docker-compose:docker-compose openssl:openssl nginx:nginx-light chromium:chromium
deps:
	@missing=""; for d in $(DEBS); do c=$${d%%:*}; p=$${d#*:}; \
	  command -v $$c >/dev/null 2>&1 || [ -x /usr/sbin/$$c ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (Debian packages) for the tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

screenshots: deps ## the web console's pages, from its browser test, into docs/ui/
	NEBULA_SCREENSHOTS=$(CURDIR)/docs/ui $(GO) test -count=1 -run TestConsoleInABrowser ./manager

lint:
	$(GO) vet ./...
	$(GO) build -tags agent -o /dev/null ./cmd/nebula # the device agent's build (make agent)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

bench: deps ## every performance number, next to its baseline; writes docs/benchmarks.md and docs/bench/*.svg
	rm -rf bench-out && mkdir -p bench-out
	NEBULA_BENCH_OUT=$(CURDIR)/bench-out $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 30m \
	  ./worker/sim ./internal/bench/fleetbench ./events/kafkalog ./projections ./projections/reports ./manager ./cmd/nebula
	$(GO) run ./cmd/benchreport -in bench-out/results.jsonl -out docs
	@echo "written: docs/benchmarks.md, docs/bench/*.svg; profiles in bench-out/profiles (go tool pprof)"

soak: deps ## the whole system under steady load for NEBULA_SOAK_DURATION (default 10m): errors, p99 drift, RSS growth
	$(GO) test -run '^$$' -bench Soak -benchtime 1x -timeout 2h30m ./internal/bench/soak

fuzz: ## a short run of every fuzzer
	@for f in FuzzDecode FuzzFastDecode FuzzPeek FuzzReadDeviceEvent FuzzDecodeReport FuzzDecodeHeartbeat FuzzPortSpec FuzzValidateImage FuzzValidateApplied FuzzNamesAndPaths; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s ./events || exit 1; done
	@for f in FuzzAppBodies FuzzGroupBodies FuzzCronBodies FuzzUserBodies FuzzSessionCookie; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s ./manager || exit 1; done
	@for f in FuzzDocumentEncoding FuzzDocumentDecoding FuzzVersionChunk; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s ./projections || exit 1; done
	$(GO) test -run '^$$' -fuzz '^FuzzDeviceDocument$$' -fuzztime 20s ./projections/reports
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20s ./internal/cronexpr
	@for f in FuzzLexer FuzzAppendString; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s ./internal/jsonlex || exit 1; done

kcat-demo: deps ## print the event log of a running `make run` with kcat
	kcat -b 127.0.0.1:9092 -t nebula-events -C -e -f '%o\t%k\t%h\t%s\n'

clean:
	rm -rf bin
