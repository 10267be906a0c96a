#!/bin/sh
# Build every libFuzzer harness in tests/fuzz and run each for a while.
#
#   tests/fuzz/build.sh [SECONDS] [NAME...]
#
# SECONDS: how long to run each harness (default 60; 0 = build only). NAME: run only these
# harnesses (e.g. fuzz_size). Each tests/fuzz/fuzz_*.c names the vessel sources it needs in a
# comment line "// SOURCES: src/a.c src/b.c" and may add link flags in "// LIBS: -lfdt".
# Binaries go to build/fuzz/, working corpora to build/fuzz/corpus/<name>/ (seeded from
# tests/fuzz/corpus/<name>/ when that exists), crash inputs to build/fuzz/crashes/<name>/.
# Exit status is non-zero if a harness fails to build or the fuzzer finds a crash.
set -eu
cd "$(dirname "$0")/../.."

secs=${1:-60}
[ $# -gt 0 ] && shift
CC=${FUZZ_CC:-clang}
CFLAGS="-std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -fno-omit-frame-pointer \
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
out=build/fuzz
mkdir -p "$out"

wanted() {
    [ $# -le 1 ] && return 0
    n=$1; shift
    for w in "$@"; do [ "$w" = "$n" ] && return 0; done
    return 1
}

fail=0
npass=0
nfail=0
for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    wanted "$name" "$@" || continue
    srcs=$(sed -n 's|^// SOURCES:||p' "$src" | tr '\n' ' ')
    libs=$(sed -n 's|^// LIBS:||p' "$src" | tr '\n' ' ')
    # every device model saves and loads its snapshot state with util/staterec (CRC: zlib)
    case " $srcs " in *" src/util/staterec.c "*) ;; *) srcs="$srcs src/util/staterec.c" ;; esac
    libs="$libs -lz"
    echo "== build $name: $src $srcs"
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS -o "$out/$name" "$src" $srcs $libs -lm -lpthread; then
        echo "!! $name: build failed"
        fail=1
        nfail=$((nfail + 1))
        continue
    fi
    if [ "$secs" -eq 0 ]; then
        npass=$((npass + 1))
        continue
    fi

    corpus=$out/corpus/$name
    crashes=$out/crashes/$name
    mkdir -p "$corpus" "$crashes"
    seeds=
    [ -d "tests/fuzz/corpus/$name" ] && seeds="tests/fuzz/corpus/$name"
    echo "== run $name for ${secs}s"
    # shellcheck disable=SC2086
    if ! "$out/$name" -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$crashes/" "$corpus" $seeds >"$out/$name.log" 2>&1; then
        echo "!! $name: fuzzer found a problem; see $out/$name.log and $crashes/"
        tail -n 30 "$out/$name.log"
        fail=1
        nfail=$((nfail + 1))
    else
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$out/$name.log" || true
        echo "   corpus: $(ls "$corpus" | wc -l) inputs"
        npass=$((npass + 1))
    fi
done
echo "fuzz: $npass passed, $nfail failed"
exit $fail
