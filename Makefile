# vessel build. `make` builds ./vessel; `make asan` the sanitizer build; `make test` runs all tests.
CC       ?= gcc
CFLAGS_COMMON := -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -MMD -MP \
                 -fno-strict-aliasing -pthread
CFLAGS_REL  := -O2 -g $(CFLAGS_COMMON)
CFLAGS_ASAN := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined $(CFLAGS_COMMON)
LIBS     := -lfdt -lm -lpthread -luring -ljson-c -lmicrohttpd -lseccomp -lz -lzstd -lslirp -lnettle

SRCS     := $(shell find src -name '*.c' | sort)
LIBSRCS  := $(filter-out src/main.c,$(SRCS))
UNITSRCS := $(sort $(wildcard tests/unit/*.c))

REL_OBJS  := $(SRCS:%.c=build/rel/%.o)
ASAN_OBJS := $(SRCS:%.c=build/asan/%.o)
REL_LIB   := $(LIBSRCS:%.c=build/rel/%.o)
ASAN_LIB  := $(LIBSRCS:%.c=build/asan/%.o)
REL_UNIT  := $(UNITSRCS:%.c=build/rel/%.o)
ASAN_UNIT := $(UNITSRCS:%.c=build/asan/%.o)

.PHONY: all asan test unit unit-asan isa guest-cache clean format format-check fuzz run diff \
        diff-long unit-jit isa-jit isa-jit-asan diff-jit
all: vessel

vessel: $(REL_OBJS)
	$(CC) $(CFLAGS_REL) -o $@ $^ $(LIBS)

vessel-asan: $(ASAN_OBJS)
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(LIBS)
asan: vessel-asan

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_REL) -c -o $@ $<
build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ASAN) -c -o $@ $<

build/unit-tests: $(REL_UNIT) $(REL_LIB)
	$(CC) $(CFLAGS_REL) -o $@ $^ $(LIBS)
build/unit-tests-asan: $(ASAN_UNIT) $(ASAN_LIB)
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(LIBS)

unit: build/unit-tests
	./build/unit-tests
unit-asan: build/unit-tests-asan
	./build/unit-tests-asan
# The unit tests with the CPU harness (th_run_until) running the JIT instead of the interpreter.
unit-jit: build/unit-tests
	VESSEL_TEST_ENGINE=jit ./build/unit-tests

# Everything: set-up, unit tests (plain + sanitizers), ISA tests, guest tests.
test:
	./tests/run-all.sh

# Install host packages, build vessel and the default guest, and boot it.
run:
	./scripts/setup-host.sh
	./guest/build.sh
	$(MAKE) vessel
	./vessel run

guest-cache:
	./guest/build.sh

# Bare-metal ISA tests against vessel's interpreter (tests/isa/run.sh qemu runs them on QEMU).
isa: vessel
	ISA_ENGINE=interp ./tests/isa/run.sh ./vessel
# The same under --engine jit (also in the sanitizer build).
isa-jit: vessel
	ISA_ENGINE=jit ./tests/isa/run.sh ./vessel
isa-jit-asan: vessel-asan
	ISA_ENGINE=jit ./tests/isa/run.sh ./vessel-asan

# Random-instruction differential tests against QEMU (tests/diff/README.md): `diff` is the CI
# budget (4 x 500 sequences x 100 units, ~2*10^5 instructions), `diff-long` runs millions.
# DIFF_EMU picks the emulator under test (a vessel binary or a command with {bin}).
DIFF_EMU   ?= ./vessel run --engine interp --firmware {bin} --memory 256M
DIFF_SEEDS ?= 50
DIFF_FIRST ?= 1000
diff: vessel
	./tests/diff/run.py --emu '$(DIFF_EMU)' --seeds 4 --seqs 500 --len 100
# The JIT against the interpreter (DIFF_REF=qemu: against QEMU).
DIFF_REF ?= ./vessel run --engine interp --firmware {bin} --memory 256M
diff-jit: vessel
	./tests/diff/run.py --emu './vessel run --engine jit --firmware {bin} --memory 256M' \
	    --ref '$(DIFF_REF)' --seeds 4 --seqs 500 --len 100 --out build/diff-jit
diff-long: vessel
	./tests/diff/run.py --emu '$(DIFF_EMU)' --first-seed $(DIFF_FIRST) --seeds $(DIFF_SEEDS) \
	    --seqs 1000 --len 100 --out build/diff-long

# libFuzzer harnesses (clang); FUZZ_SECONDS per harness.
FUZZ_SECONDS ?= 30
fuzz:
	./tests/fuzz/build.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(find src tests bench -name '*.c' -o -name '*.h' | grep -v '^tests/isa/.*\.S$$')

# Fails (and names the files) when a C file differs from clang-format's output.
format-check:
	@bad=$$(for f in $$(find src tests bench -name '*.c' -o -name '*.h'); do \
	    clang-format --dry-run "$$f" 2>&1 | grep -q . && echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "not clang-formatted (make format):"; echo "$$bad"; exit 1; fi

clean:
	rm -rf build vessel vessel-asan

-include $(shell find build -name '*.d' 2>/dev/null)
