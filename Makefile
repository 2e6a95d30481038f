# mq — top-level driver. `make` builds, `make test` runs every test, `make run` starts a broker.
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?=
BUILD   ?= $(if $(SAN),build-san,build)
JOBS    ?= $(shell nproc)
CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=$(if $(SAN),Debug,RelWithDebInfo) \
               -DMQ_SANITIZE=$(if $(SAN),ON,OFF) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

.PHONY: all build deps configure test unit integration run bench torture install uninstall clean fuzz

all: build

deps:
	@scripts/deps

$(BUILD)/build.ninja: | deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

configure: deps $(BUILD)/build.ninja

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@scripts/deps --test
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

unit: build
	@$(BUILD)/bin/mq-unit-tests

integration: build
	@scripts/deps --test
	@cd $(BUILD) && ctest --output-on-failure -L integration -j $(JOBS)

run: build
	@echo "mq: starting a broker on 127.0.0.1:9876 (Ctrl-C stops it). In another terminal:" >&2
	@echo "    echo hello | $(BUILD)/bin/mq-send -t demo && $(BUILD)/bin/mq-consume -t demo --from earliest -e" >&2
	@exec $(BUILD)/bin/mq-broker

bench: build
	@BUILD=$(BUILD) scripts/bench

# The fault suite (tests/integration/2[0-4]0-*.sh) scaled up: more kills, power cuts, longer
# network chaos. About 5 minutes on 2 cores (measured); each script is bounded by --timeout 900.
torture: build
	@scripts/deps --test
	@cd $(BUILD) && TORTURE=1 ctest --output-on-failure -R '^2[0-4]0-fault-' --timeout 900

# libFuzzer targets (clang-14, ASan+UBSan) in build-fuzz, each run FUZZ_SECONDS on a copy of
# tests/fuzz/corpus/<name>; fails on any crash and prints the artifact. See README "Fuzzing".
FUZZ_SECONDS ?= 60
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) fuzz/run.sh

install: build
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

uninstall:
	@if [ -f $(BUILD)/install_manifest.txt ]; then \
	  while read -r f || [ -n "$$f" ]; do rm -f "$(DESTDIR)$$f"; done < $(BUILD)/install_manifest.txt; \
	else echo "make uninstall: nothing recorded (run make install first)" >&2; fi

clean:
	@rm -rf build build-san
