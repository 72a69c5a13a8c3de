# The project's commands. `make test` is what CI runs (through .ci/run).
GO      ?= go
PKGS    := ./...
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run test lint vuln bench build docker fuzz

run: ## run the server in dev mode on the embedded store, with demo plans
	$(GO) run ./cmd/cpisd --demo

test: ## every test, with the race detector (PostgreSQL tests need CPIS_TEST_DATABASE_URL or a local server)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

lint: ## vet, formatting, staticcheck and a tidy go.mod
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)
	$(GO) mod tidy -diff

vuln: ## known vulnerabilities in the dependencies
	$(GO) run golang.org/x/vuln/cmd/govulncheck@latest $(PKGS)

bench: ## the audited-read benchmark on both stores (a command, not a test); see README
	$(GO) run ./cmd/cpisbench

build: ## static binaries in ./bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

docker: ## the container image (needs a Docker engine)
	docker build -t cpisd:$(VERSION) .

fuzz: ## each fuzz target for 200,000 inputs (counts, not durations: go1.26 fuzz deadline bug)
	$(GO) test ./internal/cpis -run '^$$' -fuzz FuzzParseNHSNumber -fuzztime 200000x
	$(GO) test ./fhir -run '^$$' -fuzz FuzzParseFlag -fuzztime 200000x
	$(GO) test ./fhir/search -run '^$$' -fuzz FuzzParseFlagSearch -fuzztime 200000x
	$(GO) test ./fhir/search -run '^$$' -fuzz FuzzParseAuditSearch -fuzztime 200000x
	$(GO) test ./fhir/search -run '^$$' -fuzz FuzzDecodeCursor -fuzztime 200000x
	$(GO) test ./internal/auth -run '^$$' -fuzz FuzzVerify -fuzztime 200000x
	$(GO) test ./internal/cpis -run '^$$' -fuzz FuzzReadAuthorities -fuzztime 200000x
	$(GO) test ./fhir -run '^$$' -fuzz FuzzParseCondition -fuzztime 200000x
	$(GO) test ./fhir -run '^$$' -fuzz FuzzParseWriteBundle -fuzztime 200000x -fuzzminimizetime 3s
	$(GO) test ./cmd/cpisctl -run '^$$' -fuzz FuzzSniff -fuzztime 200000x
