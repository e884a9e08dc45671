# mod_agentchat build.  The module is built with apxs; the core in src/ is also
# compiled directly into the cmocka unit-test binaries.
APXS      ?= apxs
APACHECTL ?= apachectl
CC        ?= gcc

SRC_CORE  := $(sort $(wildcard src/*.c src/tools/*.c))
SRC_MOD   := mod_agentchat.c mod_agentchat_config.c mod_agentchat_sse.c $(SRC_CORE)
HDRS      := $(wildcard src/*.h src/tools/*.h include/*.h) mod_agentchat_glue.h

WARN      := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
STD       := -std=c11 -D_GNU_SOURCE
LIBS      := -lcurl -ljansson -lcrypto -lm

APR_CFLAGS := $(shell apr-1-config --cflags --cppflags --includes 2>/dev/null) \
              $(shell apu-1-config --includes 2>/dev/null)
APR_LIBS   := $(shell apr-1-config --link-ld 2>/dev/null) $(shell apu-1-config --link-ld 2>/dev/null)

MODULE    := .libs/mod_agentchat.so

.SECONDARY:

.PHONY: all install test unit integration e2e deps run bench clean check-format check-pack check-docs

all: $(MODULE)

$(MODULE): $(SRC_MOD) $(HDRS)
	@mkdir -p build
	@echo "  APXS  mod_agentchat.la (log: build/apxs.log)"
	@$(APXS) -c -o mod_agentchat.la -Wc,"$(STD) $(WARN) -O2 -g" -Isrc -Iinclude $(SRC_MOD) $(LIBS) \
	    > build/apxs.log 2>&1 || { cat build/apxs.log; exit 1; }

install: $(MODULE)
	$(APXS) -i -n agentchat mod_agentchat.la
	install -m 0644 conf/agentchat.load /etc/apache2/mods-available/agentchat.load 2>/dev/null || true
	@# an admin's edited agentchat.conf is never overwritten
	test -e /etc/apache2/mods-available/agentchat.conf || \
	    install -m 0644 conf/agentchat.conf /etc/apache2/mods-available/agentchat.conf 2>/dev/null || true

# ---- unit tests (cmocka) ------------------------------------------------------
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(patsubst tests/unit/%.c,build/unit/%,$(UNIT_SRC))
CORE_OBJ  := $(patsubst %.c,build/obj/%.o,$(SRC_CORE))

build/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(STD) $(WARN) -O1 -g -Isrc -Iinclude $(APR_CFLAGS) -c $< -o $@

build/unit/%: tests/unit/%.c $(CORE_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(STD) $(WARN) -O1 -g -Isrc -Iinclude -Itests/unit $(APR_CFLAGS) $< $(CORE_OBJ) -o $@ \
	    -lcmocka $(LIBS) $(APR_LIBS)

# json_pack() formats must consume exactly the arguments given (a mismatch
# crashes at run time); checked statically before the tests run.
check-pack:
	@python3 tests/tools/check-json-pack.py mod_agentchat*.c src/*.c src/tools/*.c

# Every directive is in conf/agentchat.conf and docs/configuration.md, every
# route in docs/api.md.
check-docs:
	@tests/tools/check-docs.sh

unit: check-pack check-docs $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# ---- integration tests (real httpd + Cosmos-protocol server + scripted model) --
deps:
	@tests/install-deps.sh

integration: $(MODULE)
	cd tests && node --test --test-concurrency=1 --test-timeout=120000 integration/

# Browser tests: Debian's chromium driven by playwright-core (demo page, EventSource).
e2e: $(MODULE)
	cd tests && node --test --test-concurrency=1 e2e/

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) e2e

# ---- streaming benchmark (not part of `make test`; writes bench/RESULTS.md) ----
bench: $(MODULE)
	cd tests && node ../bench/stream-bench.js

# Everything locally on http://localhost:8080 (see run/run-local.js for the
# AGENTCHAT_* variables that switch to real Azure services).
run: deps all
	cd tests && node ../run/run-local.js

clean:
	rm -rf build .libs *.la *.lo *.slo *.o src/*.lo src/*.o src/*.slo src/.libs \
	    src/tools/*.lo src/tools/*.o src/tools/*.slo src/tools/.libs

check-format:
	clang-format --dry-run --Werror mod_agentchat*.c mod_agentchat_glue.h src/*.c src/*.h src/tools/*.c src/tools/*.h include/*.h
