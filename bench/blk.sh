#!/usr/bin/env bash
# Block I/O side by side: vessel vs QEMU (virtio-blk-device, aio=io_uring, cache=none) vs the
# host, on the same raw image, with direct I/O. A first version until the Debian root disk with
# fio exists (issue 4): the guests run busybox dd, so 4K reads are queue depth 1.
#   bench/blk.sh [RUNS]      (default 3; prints medians and vessel/QEMU ratios)
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-3}
C=${VESSEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vessel}/guest/default
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -x ./vessel ] || make -s vessel
IMG=$TMP/bench.img
./vessel disk create "$IMG" 512M >/dev/null
dd if=/dev/urandom of="$IMG" bs=1M count=256 conv=notrunc status=none

# The default initramfs with one more boot script that loads the virtio modules.
mkdir -p "$TMP/extra/etc/rc.d"
cat >"$TMP/extra/etc/rc.d/50-virtio" <<'S'
#!/bin/sh
kv=$(uname -r)
while read -r n p; do
    case "$n" in '' | '#'*) continue ;; esac
    [ -d "/sys/module/$n" ] || insmod "/lib/modules/$kv/$p"
done </lib/modules/initramfs-modules
S
chmod +x "$TMP/extra/etc/rc.d/50-virtio"
(cd "$TMP/extra" && find . | cpio -o -H newc --quiet | gzip) >"$TMP/extra.cpio.gz"
cat "$C/initramfs.cpio.gz" "$TMP/extra.cpio.gz" >"$TMP/initrd.gz"

WORK='t(){ cut -d" " -f1 /proc/uptime; }; sleep 1; a=$(t); dd if=/dev/vda of=/dev/null bs=1M count=256 iflag=direct 2>/dev/null; b=$(t); dd if=/dev/zero of=/dev/vda bs=1M count=128 oflag=direct 2>/dev/null; c=$(t); dd if=/dev/vda of=/dev/null bs=4k count=8192 iflag=direct 2>/dev/null; d=$(t); echo "RESULT $a $b $c $d"; poweroff'

run_guest() { # $1 = vessel|qemu; prints "read_MBps write_MBps iops"
    local out
    if [ "$1" = vessel ]; then
        out=$( (sleep 12; echo "$WORK") | timeout 180 ./vessel run --kernel "$C/Image" \
            --initrd "$TMP/initrd.gz" --cmdline console=ttyS0 --disk "$IMG" 2>&1)
    else
        out=$( (sleep 12; echo "$WORK") | timeout 180 qemu-system-riscv64 -M virt -m 512M -smp 1 \
            -nographic -bios "$C/fw_dynamic.bin" -kernel "$C/Image" -initrd "$TMP/initrd.gz" \
            -append console=ttyS0 -drive if=none,file="$IMG",format=raw,cache=none,aio=io_uring,id=d0 \
            -device virtio-blk-device,drive=d0 2>&1)
    fi
    echo "$out" | awk '/^RESULT/ {printf "%.1f %.1f %.0f\n", 256/($3-$2), 128/($4-$3), 8192/($5-$4)}'
}

run_host() {
    local a b c d
    a=$(date +%s.%N); dd if="$IMG" of=/dev/null bs=1M count=256 iflag=direct status=none
    b=$(date +%s.%N); dd if=/dev/zero of="$IMG" bs=1M count=128 oflag=direct conv=notrunc status=none
    c=$(date +%s.%N); dd if="$IMG" of=/dev/null bs=4k count=8192 iflag=direct status=none
    d=$(date +%s.%N)
    echo "$a $b $c $d" | awk '{printf "%.1f %.1f %.0f\n", 256/($2-$1), 128/($3-$2), 8192/($4-$3)}'
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

for ((i = 0; i < RUNS; i++)); do # interleaved so machine noise hits all three
    run_guest vessel >>"$TMP/vessel"
    run_guest qemu >>"$TMP/qemu"
    run_host >>"$TMP/host"
done
printf '%-32s %10s %10s %10s %8s\n' metric vessel qemu host vessel/qemu
for col in 1 2 3; do
    name=$(echo "seq read 1M (MB/s)|seq write 1M (MB/s)|4K read QD1 (IOPS)" | cut -d'|' -f$col)
    v=$(cut -d' ' -f$col "$TMP/vessel" | median)
    q=$(cut -d' ' -f$col "$TMP/qemu" | median)
    h=$(cut -d' ' -f$col "$TMP/host" | median)
    r=$(awk -v v="$v" -v q="$q" 'BEGIN {if (q > 0) printf "%.2fx", v / q; else print "-"}')
    bar=$(awk -v v="$v" -v q="$q" 'BEGIN {print (q > 0 && v >= q) ? "PASS" : "MISS"}')
    printf '%-32s %10s %10s %10s %8s  %s (bar: >= 1.0x QEMU)\n' "$name" "$v" "$q" "$h" "$r" "$bar"
done
echo "(guest writes: vessel goes through the host page cache and is durable at FLUSH; QEMU"
echo " cache=none uses O_DIRECT — compare reads, and writes with that in mind)"
