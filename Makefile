# ramboot — `make build`, `make test`, `make bench`. `make help` lists the targets.
GO      ?= go
GOFLAGS ?=
export CGO_ENABLED = 0
# /init: stripped, and without net/http's HTTP/2 (0.34 MiB; its servers all speak HTTP/1.1).
# cmd/ramboot-init's tests build it the same way (goBuild).
INIT_FLAGS = -trimpath -ldflags="-s -w" -tags nethttpomithttp2

.PHONY: help build test lint bench bench-boot loadtest demo fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

gocheck: ## say in one line when Go is missing or older than 1.21 (which fetches go.mod's toolchain itself)
	@command -v $(GO) >/dev/null 2>&1 || { echo "ramboot needs Go 1.21 or newer (it then fetches the toolchain go.mod names): install it from https://go.dev/dl/ or put /usr/local/go/bin on PATH"; exit 1; }
	@v=$$(GOTOOLCHAIN=local $(GO) env GOVERSION 2>/dev/null); case "$$v" in go1.[0-9]|go1.[0-9].*|go1.1[0-9]|go1.1[0-9].*|go1.20|go1.20.*|"") echo "ramboot needs Go 1.21 or newer (it then fetches the toolchain go.mod names); found $${v:-an unknown version}: install one from https://go.dev/dl/"; exit 1;; esac

# bin/ramboot-init is amd64's /init (the name tests and scripts know), bin/ramboot-init-arm64
# arm64's: ramboot initramfs packs the one its modules' architecture needs.
build: gocheck ## build bin/ramboot (host CLI) and the static /init: bin/ramboot-init (amd64), bin/ramboot-init-arm64
	$(GO) build -o bin/ramboot ./cmd/ramboot
	GOARCH=amd64 $(GO) build $(INIT_FLAGS) -o bin/ramboot-init ./cmd/ramboot-init
	GOARCH=arm64 $(GO) build $(INIT_FLAGS) -o bin/ramboot-init-arm64 ./cmd/ramboot-init

lint: ## gofmt, go vet and staticcheck must be clean
	@f=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); [ -z "$$f" ] || { echo "gofmt would change: $$f"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...

# The packages /init links (this module's): the race detector must be clean on all of them.
INIT_PKGS = $(shell $(GO) list -deps ./cmd/ramboot-init | grep '^github.com/ramboot/ramboot/')

test: build lint ## every test: unit, fault injection, GNU tar fidelity, nginx, network namespaces, QEMU boots; then /init's packages under the race detector
	$(GO) test -count=1 -timeout 30m ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m -skip '^TestVM' $(INIT_PKGS)

# BENCH_MB, BENCH_RUNS, BENCH_DEBIAN, BENCH_CASES, BENCH_BASELINE, BENCH_DIR: see bench/run.sh.
bench: build ## `ramboot fetch` vs the seed (busybox wget|pixz|tar), GNU/curl pipelines and its limits (zstd -d, GNU tar, its xz decoder alone), as ratios (root, nginx; ~10 min)
	bash bench/run.sh

# The stages are the boot report's events (and the host's clock for what they cannot see):
# bench/bootbench. BENCH_BOOT_MB (image: bench/genimage -mb N plus a test init; default 20, 0 for
# the init alone), BENCH_BOOT_FORMAT (zst or xz), BENCH_BOOT_SOURCE (menu or cmdline).
BOOTS ?= 5
bench-boot: gocheck ## boot ramboot in QEMU BOOTS times (default 5) and print each stage's median, min and max: network, menu, fetch, switch_root, total (kernel: RAMBOOT_KERNEL_DIR)
	BENCH_BOOTS=$(BOOTS) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkBoot$$' -benchtime 1x -timeout 60m ./bench/bootbench

loadtest: build ## 50 `ramboot fetch` clients through a proxy that cuts them and goes down for 30 s (root, nginx; ~3 min)
	$(GO) run ./bench/loadtest -ramboot bin/ramboot

demo: gocheck ## boot the menu in QEMU: installs what is missing, builds, serves, boots (Ctrl-A X quits)
	bash scripts/demo.sh

# A new input is minimised for at most 2 s: minimising a large tarball (each run extracts into
# a fresh directory) otherwise took most of a short fuzz run.
FUZZFLAGS ?= -fuzztime 30s -fuzzminimizetime 2s

fuzz: ## run each fuzz target for a short while (FUZZFLAGS: -fuzztime 30s -fuzzminimizetime 2s)
	$(GO) test ./loader -run '^$$' -fuzz FuzzSniff $(FUZZFLAGS)
	$(GO) test ./loader -run '^$$' -fuzz FuzzCleanName $(FUZZFLAGS)
	$(GO) test ./loader -run '^$$' -fuzz FuzzParseRetryAfter $(FUZZFLAGS)
	$(GO) test ./loader -run '^$$' -fuzz FuzzExtract $(FUZZFLAGS)
	$(GO) test ./loader -run '^$$' -fuzz FuzzTarFast $(FUZZFLAGS)
	$(GO) test ./internal/xzpar -run '^$$' -fuzz FuzzNewReader $(FUZZFLAGS)
	$(GO) test ./internal/xzpar -run '^$$' -fuzz FuzzCRC64 $(FUZZFLAGS)
	$(GO) test ./bootmenu -run '^$$' -fuzz FuzzParseYAML $(FUZZFLAGS)
	$(GO) test ./bootmenu -run '^$$' -fuzz FuzzParsePXELinux $(FUZZFLAGS)
	$(GO) test ./internal/cmdline -run '^$$' -fuzz FuzzParse $(FUZZFLAGS)
	$(GO) test ./internal/trust -run '^$$' -fuzz FuzzSignature $(FUZZFLAGS)
	$(GO) test ./loader -run '^$$' -fuzz FuzzRegistryManifest $(FUZZFLAGS)
	$(GO) test ./internal/netup -run '^$$' -fuzz FuzzLeaseFromACK $(FUZZFLAGS)
	$(GO) test ./internal/netup -run '^$$' -fuzz FuzzLease6 $(FUZZFLAGS)
	$(GO) test ./internal/netup -run '^$$' -fuzz FuzzParseRA $(FUZZFLAGS)
	$(GO) test ./internal/vmtest/vswitch -run '^$$' -fuzz FuzzParse $(FUZZFLAGS)
	$(GO) test ./internal/kmod -run '^$$' -fuzz FuzzModinfoSection $(FUZZFLAGS)
	$(GO) test ./internal/kmod -run '^$$' -fuzz FuzzMatch $(FUZZFLAGS)
	$(GO) test ./internal/initramfs -run '^$$' -fuzz FuzzReadMachine $(FUZZFLAGS)
	$(GO) test ./internal/initramfs -run '^$$' -fuzz FuzzAppletNames $(FUZZFLAGS)
	$(GO) test ./kexec -run '^$$' -fuzz FuzzARM64Image $(FUZZFLAGS)
	$(GO) test ./internal/imageconv -run '^$$' -fuzz FuzzParseSource $(FUZZFLAGS)
	$(GO) test ./internal/efi -run '^$$' -fuzz FuzzParseLoadOption $(FUZZFLAGS)
	$(GO) test ./internal/peimage -run '^$$' -fuzz FuzzParse $(FUZZFLAGS)
	$(GO) test ./internal/authenticode -run '^$$' -fuzz FuzzSignatures $(FUZZFLAGS)
	$(GO) test ./internal/authenticode -run '^$$' -fuzz FuzzParseSignedData $(FUZZFLAGS)
	$(GO) test ./internal/uki -run '^$$' -fuzz FuzzInspect $(FUZZFLAGS)
	$(GO) test ./internal/pemkey -run '^$$' -fuzz FuzzDecryptPKCS8 $(FUZZFLAGS)

clean: ## remove build output
	rm -rf bin
