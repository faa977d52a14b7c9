# cdni-gateway — top-level build.
#
#   make            build bin/ucdn bin/dcdn bin/cdnictl (release flags)
#   make run        install missing packages, build, start a uCDN + dCDN demo
#   make test       ASan+UBSan build, cmocka unit tests, integration tests
#   make bench      benchmarks, each against a baseline measured in the same run
#   make fuzz       libFuzzer targets (FUZZ_SECONDS each, default 60)
#   make install    install binaries under $(PREFIX)/bin
#
# Every library comes through pkg-config; scripts/deps.sh installs what is
# missing on Debian when run as root.

PKGS      := libmicrohttpd gnutls libcurl jansson libxml-2.0 openssl zlib hiredis libidn2
CC        ?= cc
PREFIX    ?= /usr/local
FUZZ_SECONDS ?= 60

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASEFLAGS := -std=c17 -D_GNU_SOURCE -I. $(WARN) $(PKG_CFLAGS)
RELFLAGS  := -O2 -g
SANFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDLIBS    := $(PKG_LIBS) -lpthread -lm

# Floors: common/ (1), interfaces/ signing/ manifest/ (2), ucdn/ dcdn/ cli/ (3).
COMMON_SRC := $(wildcard common/*.c)
IFACE_SRC  := $(wildcard interfaces/*.c) $(wildcard signing/*.c) $(wildcard manifest/*.c)
LIB_SRC    := $(COMMON_SRC) $(IFACE_SRC)
UCDN_SRC   := $(wildcard ucdn/*.c)
DCDN_SRC   := $(wildcard dcdn/*.c)
CLI_SRC    := $(wildcard cli/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
HDRS       := $(wildcard common/*.h interfaces/*.h signing/*.h manifest/*.h ucdn/*.h dcdn/*.h cli/*.h)

REL := build/rel
SAN := build/san

rel_obj = $(patsubst %.c,$(REL)/%.o,$(1))
san_obj = $(patsubst %.c,$(SAN)/%.o,$(1))

.PHONY: all deps run test unit man-check integration bench fuzz install clean
all: deps-check bin/ucdn bin/dcdn bin/cdnictl

deps-check:
	@pkg-config --exists $(PKGS) cmocka || { echo "missing libraries: run 'sudo scripts/deps.sh' (make run/test do it for you as root)"; exit 1; }
.PHONY: deps-check

deps:
	@scripts/deps.sh

$(REL)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"; $(CC) $(BASEFLAGS) $(RELFLAGS) -c $< -o $@

$(SAN)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"; $(CC) $(BASEFLAGS) $(SANFLAGS) -c $< -o $@

bin/ucdn: $(call rel_obj,$(UCDN_SRC) $(LIB_SRC))
	@mkdir -p bin
	$(CC) $(RELFLAGS) -o $@ $^ $(LDLIBS)
bin/dcdn: $(call rel_obj,$(DCDN_SRC) $(LIB_SRC))
	@mkdir -p bin
	$(CC) $(RELFLAGS) -o $@ $^ $(LDLIBS)
bin/cdnictl: $(call rel_obj,$(CLI_SRC) $(LIB_SRC))
	@mkdir -p bin
	$(CC) $(RELFLAGS) -o $@ $^ $(LDLIBS)

# Sanitizer builds of the daemons, used by the integration tests.
$(SAN)/bin/ucdn: $(call san_obj,$(UCDN_SRC) $(LIB_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)
$(SAN)/bin/dcdn: $(call san_obj,$(DCDN_SRC) $(LIB_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)
$(SAN)/bin/cdnictl: $(call san_obj,$(CLI_SRC) $(LIB_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

# One cmocka binary per tests/unit/test_*.c, linked with the library floors.
UNIT_BINS := $(patsubst tests/unit/%.c,$(SAN)/unit/%,$(UNIT_SRC))
# The surrogate's cache is dcdn's, but stands alone: its unit test links it.
CACHE_SRC := $(wildcard dcdn/cache*.c)
$(SAN)/unit/test_cache: tests/unit/test_cache.c $(call san_obj,$(LIB_SRC) $(CACHE_SRC)) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(SANFLAGS) -o $@ $< $(call san_obj,$(LIB_SRC) $(CACHE_SRC)) $(LDLIBS) $(CMOCKA_LIBS)
$(SAN)/unit/%: tests/unit/%.c $(call san_obj,$(LIB_SRC)) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(SANFLAGS) -o $@ $< $(call san_obj,$(LIB_SRC)) $(LDLIBS) $(CMOCKA_LIBS)

# Unit tests of the daemons' pure decision code (no I/O) link that code too.
$(SAN)/unit/test_ucdn_%: tests/unit/test_ucdn_%.c $(call san_obj,$(LIB_SRC) ucdn/routing.c) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(SANFLAGS) -o $@ $< $(call san_obj,$(LIB_SRC) ucdn/routing.c) $(LDLIBS) $(CMOCKA_LIBS)

# The status pages and test player (web/), with hls.js, shaka-player and
# dash.js vendored from the npm
# registry (package.json, package-lock.json): served from build/ui by the
# daemons (ui_dir). Nothing is fetched at run time.
UI := build/ui
UI_FILES := $(patsubst web/%,$(UI)/%,$(wildcard web/*))
node_modules/.package-lock.json: package.json package-lock.json
	@echo "  NPM     ci (hls.js, shaka-player, dash.js, playwright-core)"
	@npm ci --no-audit --no-fund --loglevel=error
$(UI)/vendor/hls.min.js: node_modules/.package-lock.json
	@mkdir -p $(dir $@)
	@cp node_modules/hls.js/dist/hls.min.js $@
	@cp node_modules/hls.js/LICENSE $(UI)/vendor/hls.js.LICENSE
$(UI)/vendor/shaka-player.compiled.js: node_modules/.package-lock.json
	@mkdir -p $(dir $@)
	@cp node_modules/shaka-player/dist/shaka-player.compiled.js $@
	@cp node_modules/shaka-player/LICENSE $(UI)/vendor/shaka-player.LICENSE
$(UI)/vendor/dash.all.min.js: node_modules/.package-lock.json
	@mkdir -p $(dir $@)
	@cp node_modules/dashjs/dist/modern/umd/dash.all.min.js $@
	@cp node_modules/dashjs/LICENSE.md $(UI)/vendor/dashjs.LICENSE.md
$(UI)/%: web/%
	@mkdir -p $(UI)
	@cp $< $@
VENDOR := $(UI)/vendor/hls.min.js $(UI)/vendor/shaka-player.compiled.js $(UI)/vendor/dash.all.min.js
ui: $(UI_FILES) $(VENDOR)
.PHONY: ui

# The sample title of collection m1 (examples/master.m3u8 points at its
# renditions): 8 s of H.264 720p/1080p and AAC made with Debian's ffmpeg.
SAMPLE := build/sample-title
$(SAMPLE)/vod/d1/manifest.mpd: scripts/sample_title.sh
	@echo "  FFMPEG  sample title (8 s: HLS H.264 720p and 1080p, AAC; DASH 720p, AAC)"
	@rm -rf $(SAMPLE) && scripts/sample_title.sh $(SAMPLE)/vod/m1 8 && scripts/sample_title.sh --dash $(SAMPLE)/vod/d1 8
sample-title: $(SAMPLE)/vod/d1/manifest.mpd
.PHONY: sample-title

# Builds run on every core; the tests after them one at a time (they time things).
NPROC := $(shell nproc 2>/dev/null || echo 2)

run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) bin/ucdn bin/dcdn bin/cdnictl ui sample-title
	@scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) test-build
	@$(MAKE) --no-print-directory -j1 unit man-check fuzz-smoke integration


unit: $(UNIT_BINS)
	@scripts/unit.sh $(UNIT_BINS)

# The manual pages render with no groff warning.
MAN_PAGES := man/ucdn.8 man/dcdn.8 man/cdnictl.1
man-check:
	@for m in $(MAN_PAGES); do w=$$(LC_ALL=C.UTF-8 groff -man -ww -z $$m 2>&1); \
	  if [ -n "$$w" ]; then echo "$$m: $$w"; exit 1; fi; done; echo "man: $(MAN_PAGES) render cleanly"

integration: $(SAN)/bin/ucdn $(SAN)/bin/dcdn $(SAN)/bin/cdnictl ui sample-title
	@BIN_DIR=$(SAN)/bin python3 tests/integration/run.py

# --- benchmarks -----------------------------------------------------------
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(REL)/bench/%,$(BENCH_SRC))
$(REL)/bench/%: tests/bench/%.c $(call rel_obj,$(LIB_SRC)) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -O2 -g -o $@ $< $(call rel_obj,$(LIB_SRC)) $(BENCH_LIBS) $(LDLIBS)
# the URI-signing benchmark links its baselines (cjose, libjwt)
$(REL)/bench/bench_token: BENCH_LIBS = $(shell pkg-config --libs cjose libjwt 2>/dev/null)

# the shell benchmarks' load client (not a benchmark itself)
BENCH_TOOLS := $(REL)/bench/burst_client
bench: deps $(BENCH_BINS) $(BENCH_TOOLS) bin/ucdn bin/dcdn
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; done
	@echo "== tests/bench/redirect.sh"; tests/bench/redirect.sh
	@echo "== tests/bench/surrogate.sh"; tests/bench/surrogate.sh
	@echo "== tests/bench/triggers.sh"; tests/bench/triggers.sh
	@echo "== tests/bench/flood.sh"; tests/bench/flood.sh
	@echo "== tests/bench/tls.sh"; tests/bench/tls.sh

# --- fuzzing (clang + libFuzzer) -----------------------------------------
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(COMMON_SRC) $(IFACE_SRC)
# the library floors compiled once with the fuzzer's coverage hooks, linked into every target
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined
fuzz_obj = $(patsubst %.c,build/fuzz/obj/%.o,$(1))
build/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC fuzz $<"; clang $(BASEFLAGS) $(FUZZ_FLAGS) -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(call fuzz_obj,$(FUZZ_LIB_SRC)) $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  LD fuzz $@"; clang $(BASEFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $< $(call fuzz_obj,$(FUZZ_LIB_SRC)) $(LDLIBS)

fuzz: deps $(FUZZ_BINS)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

# A short run of every fuzz target over its seed corpus, part of `make test`.
fuzz-smoke: $(FUZZ_BINS)
	@scripts/fuzz.sh 5 $(FUZZ_BINS)
.PHONY: fuzz-smoke

# everything `make test` runs, built first (on every core); defined here,
# after FUZZ_BINS
test-build: $(UNIT_BINS) $(FUZZ_BINS) $(SAN)/bin/ucdn $(SAN)/bin/dcdn $(SAN)/bin/cdnictl ui sample-title
.PHONY: test-build

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/ucdn bin/dcdn bin/cdnictl $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 man/cdnictl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 man/ucdn.8 man/dcdn.8 $(DESTDIR)$(PREFIX)/share/man/man8/

clean:
	rm -rf build bin
