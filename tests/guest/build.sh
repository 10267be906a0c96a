#!/bin/bash
# Build the guest test programs and the test initramfs into $CACHE/guest/test/:
#   amo_counter            static riscv64 program (tests/guest/amo_counter.c)
#   blkzero                static riscv64 program (tests/guest/blkzero.c)
#   litmus                 static riscv64 program (tests/litmus/litmus_linux.c): memory model
#   codepatch                static riscv64 program (tests/guest/codepatch.c): code patched at run time
#   test.cpio.gz           archive holding them under /usr/local/bin
#   initramfs-test.cpio.gz default initramfs + test.cpio.gz, concatenated (Linux
#                          unpacks every archive of a concatenation into rootfs)
# Builds the default guest first (guest/build.sh; a no-op when warm).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=guest/lib.sh
. "$top/guest/lib.sh"

"$top/guest/build.sh"
CACHE=$(vessel_cache_dir)
T=$CACHE/guest/test
base=$CACHE/guest/default/initramfs.cpio.gz
mkdir -p "$T"
exec 9>"$T/.lock"
flock 9

CC=${RISCV_CC:-riscv64-linux-gnu-gcc}
command -v "$CC" >/dev/null || die "$CC not found (apt-get install gcc-riscv64-linux-gnu libc6-dev-riscv64-cross)"
inputs=$({
    hash_inputs "$here/amo_counter.c" "$here/blkzero.c" "$here/codepatch.c" "$top/tests/litmus/litmus.h" \
        "$top/tests/litmus/litmus_linux.c" "$here/build.sh" "$top/guest/mkcpio.py" "$base"
    "$CC" --version | head -n1
} | sha256sum | cut -d' ' -f1)
if [ -f "$T/inputs" ] && [ "$(cat "$T/inputs")" = "$inputs" ] &&
    [ -s "$T/initramfs-test.cpio.gz" ] && [ -x "$T/amo_counter" ] && [ -x "$T/blkzero" ] &&
    [ -x "$T/litmus" ] && [ -x "$T/codepatch" ]; then
    msg "test guest up to date in $T"
    exit 0
fi

"$CC" -std=gnu11 -Wall -Wextra -Werror -static -O2 -pthread \
    -ffile-prefix-map="$top"=. -o "$T/amo_counter.new" "$here/amo_counter.c"
mv "$T/amo_counter.new" "$T/amo_counter"
"$CC" -std=gnu11 -Wall -Wextra -Werror -static -O2 \
    -ffile-prefix-map="$top"=. -o "$T/blkzero.new" "$here/blkzero.c"
mv "$T/blkzero.new" "$T/blkzero"
"$CC" -std=gnu11 -Wall -Wextra -Werror -static -O2 -pthread -I"$top/tests/litmus" \
    -ffile-prefix-map="$top"=. -o "$T/litmus.new" "$top/tests/litmus/litmus_linux.c"
mv "$T/litmus.new" "$T/litmus"
"$CC" -std=gnu11 -Wall -Wextra -Werror -static -O2 -pthread \
    -ffile-prefix-map="$top"=. -o "$T/codepatch.new" "$here/codepatch.c"
mv "$T/codepatch.new" "$T/codepatch"

"$top/guest/mkcpio.py" --gzip --mtime 0 -o "$T/test.cpio.gz" - <<EOS
file /usr/local/bin/amo_counter $T/amo_counter 0755 0 0
file /usr/local/bin/blkzero $T/blkzero 0755 0 0
file /usr/local/bin/litmus $T/litmus 0755 0 0
file /usr/local/bin/codepatch $T/codepatch 0755 0 0
EOS
cat "$base" "$T/test.cpio.gz" >"$T/initramfs-test.cpio.gz.new"
mv "$T/initramfs-test.cpio.gz.new" "$T/initramfs-test.cpio.gz"
echo "$inputs" >"$T/inputs"
msg "test guest built in $T"
