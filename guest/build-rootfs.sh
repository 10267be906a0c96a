#!/bin/bash
# Build the Debian riscv64 root disk into the cache (outside the git tree):
#   $CACHE/guest/debian/debian.img     ext4, label vessel-root, sparse (--size)
#   $CACHE/guest/debian/versions.txt   suite, mirror, kernel, every package's version
# $CACHE = $VESSEL_CACHE, else $XDG_CACHE_HOME/vessel, else $HOME/.cache/vessel.
#
# Steps: guest/build.sh (kernel, firmware, initramfs, modules); debootstrap's
# first stage on the host (--foreign, needs root); the kernel's modules copied
# in; mke2fs -d; debootstrap's second stage run INSIDE a guest (vessel, or QEMU)
# by guest/rootfs/setup, which also sets the root password, hostname, fstab and
# the serial getty, and installs guest/rootfs/overlay (DHCP by systemd-networkd,
# ssh host keys made at first boot, keys from --ssh-key). The image is checked (e2fsck, debugfs) before it replaces
# the cached one.
#
# Usage: guest/build-rootfs.sh [--runner auto|vessel|qemu] [--force] [--size SIZE]
#                              [--keep-work] [--check] [--stage1-only IMG]
#   --runner   where the second stage runs. auto (default): vessel if it has
#              --disk ($VESSEL_BIN, else ./vessel), else qemu-system-riscv64
#   --force    rebuild even if the cached image is up to date
#   --size     image size for mke2fs (default 2G; the file is sparse)
#   --keep-work keep the unpacked tree ($CACHE/guest/debian-work/root)
#   --check    only say whether the cached image is up to date (exit 0) or not (1)
#   --stage1-only IMG  stop before the second stage: write the image as the
#              guest gets it (first stage, modules, setup) to IMG and leave the
#              cached image alone (bench/debootstrap.py times the second stage)
# Env: VESSEL_ROOTFS_RUNNER (as --runner), VESSEL_ROOTFS_TIMEOUT (second stage
# limit in seconds, default 3600), VESSEL_ROOTFS_CPUS (default: up to 4, at most
# the host's), VESSEL_ROOTFS_VM_ARGS (more arguments for vessel or QEMU, split on
# spaces, e.g. "--gdb 1234" to debug a stuck second stage), VESSEL_DEBIAN_MIRROR
# (see guest/lib.sh).
# Idempotent: an up-to-date image costs well under a second and no network.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=guest/lib.sh
. "$here/lib.sh"

runner=${VESSEL_ROOTFS_RUNNER:-auto} force=0 size=2G keep=0 check=0 stage1_only=
while [ $# -gt 0 ]; do
    case "$1" in
    --runner)
        [ $# -ge 2 ] || die "--runner needs a value"
        runner=$2
        shift
        ;;
    --runner=*) runner=${1#--runner=} ;;
    --size)
        [ $# -ge 2 ] || die "--size needs a value"
        size=$2
        shift
        ;;
    --size=*) size=${1#--size=} ;;
    --force) force=1 ;;
    --keep-work) keep=1 ;;
    --stage1-only)
        [ $# -ge 2 ] || die "--stage1-only needs a file name"
        stage1_only=$2
        shift
        ;;
    --check) check=1 ;;
    -h | --help)
        sed -n '2,31p' "$0"
        exit 0
        ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case "$runner" in auto | vessel | qemu) ;; *) die "--runner must be auto, vessel or qemu" ;; esac
[[ $size =~ ^[0-9]+[KMGT]?$ ]] || die "bad --size $size (e.g. 2G)"
timeout_s=${VESSEL_ROOTFS_TIMEOUT:-3600}

CACHE=$(vessel_cache_dir)
G=$CACHE/guest
out=$G/debian
work=$G/debian-work

# The default guest first: its kernel and initramfs run the second stage, its
# modules go onto the disk. (A no-op when warm.)
if [ $check -eq 0 ]; then
    "$here/build.sh"
fi
D=$G/default
manifest=$G/debs/manifest
for f in Image fw_dynamic.bin initramfs.cpio.gz versions.txt; do
    [ -s "$D/$f" ] || die "missing $D/$f; run guest/build.sh"
done
[ -f "$manifest" ] || die "missing $manifest; run guest/build.sh"
suite=$(awk '$1=="suite"{print $2}' "$manifest")
kver=$(awk '$1=="kernel-release"{print $2}' "$D/versions.txt")
if [ -z "$suite" ] || [ -z "$kver" ]; then die "cannot read suite/kernel release from $D"; fi

# What the image is made of: suite, kernel release, package list, our scripts.
# (Package versions are whatever the archive has at build time; they are
# recorded in versions.txt. Delete the image or --force to pick up new ones.)
inputs=$(
    {
        echo "suite $suite" "kernel $kver" "size $size"
        hash_inputs "$here/build-rootfs.sh" "$here/lib.sh" "$here/rootfs"
    } | sha256sum | cut -d' ' -f1
)
up_to_date() {
    [ -s "$out/debian.img" ] && [ -f "$out/versions.txt" ] &&
        grep -qx "inputs $inputs" "$out/versions.txt"
}
if [ $check -eq 1 ]; then
    if up_to_date; then
        msg "Debian root disk up to date in $out"
        exit 0
    fi
    msg "Debian root disk missing or out of date in $out"
    exit 1
fi

mkdir -p "$G"
# One build at a time per cache (guest/build.sh uses $G/.lock; a separate
# lock, so the default guest stays usable during the long second stage).
exec 8>"$G/.rootfs-lock"
flock 8
if [ -z "$stage1_only" ] && [ $force -eq 0 ] && up_to_date; then
    msg "Debian root disk up to date in $out"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "debootstrap's first stage needs root (run as root or with sudo)"
for t in debootstrap mke2fs e2fsck debugfs; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install debootstrap e2fsprogs)"
done

# Where the second stage runs.
vessel_bin=${VESSEL_BIN:-$top/vessel}
vessel_has_disk() {
    [ -x "$vessel_bin" ] && "$vessel_bin" run --help 2>&1 | grep -q -- '--disk'
}
if [ "$runner" = auto ]; then
    if vessel_has_disk; then runner=vessel; else runner=qemu; fi
fi
if [ "$runner" = vessel ]; then
    vessel_has_disk || die "$vessel_bin has no --disk option (build vessel, or --runner qemu)"
else
    command -v qemu-system-riscv64 >/dev/null ||
        die "qemu-system-riscv64 not found (apt-get install qemu-system-misc)"
fi

read -r mirror keyring < <(host_debian_mirror) ||
    die "no Debian archive found in the host's apt sources; set VESSEL_DEBIAN_MIRROR=<URL of a Debian mirror>"
[ -r "$keyring" ] || die "keyring $keyring not readable; install debian-archive-keyring"

t_start=$(date +%s)
mkdir -p "$work/debs"
root=$work/root
rm -rf "$root" "$work/debian.img"

# 1. debootstrap's first stage on the host: download and unpack only. The .debs
# stay in $work/debs for the next build (debootstrap --cache-dir).
include=$(grep -v '^#' "$here/rootfs/packages" | tr -s ' \n' '\n' | grep . | paste -sd, -)
msg "debootstrap --foreign $suite riscv64 from $mirror (log: $work/stage1.log)"
t1=$(date +%s)
if ! debootstrap --foreign --arch=riscv64 --variant=minbase --keyring="$keyring" \
    --cache-dir="$work/debs" --include="$include" "$suite" "$root" "$mirror" \
    >"$work/stage1.log" 2>&1; then
    tail -n 20 "$work/stage1.log" >&2
    die "debootstrap's first stage failed (log: $work/stage1.log)"
fi
t_stage1=$(($(date +%s) - t1))

# The second stage only installs the packages the first stage downloaded
# (debootstrap/debpaths), but its pkgdetails helper (grep + perl) scans the whole
# Packages index (54 MB for trixie riscv64) several times, which under an
# emulated CPU takes many minutes. Keep only those packages' stanzas in the
# index; the full one is restored afterwards for apt (see guest/rootfs/setup).
[ -s "$root/debootstrap/debpaths" ] || die "debootstrap's first stage left no debootstrap/debpaths"
for idx in "$root"/var/lib/apt/lists/*_Packages; do
    [ -f "$idx" ] || die "no Packages index in $root/var/lib/apt/lists"
    mv "$idx" "$idx.full"
    # (RS= between the files: the index is read a stanza at a time)
    awk 'NR == FNR { want[$1] = 1; next }
         { for (i = 1; i <= NF; i++) if ($i == "Package:") { if ($(i + 1) in want) print $0 "\n"; break } }' \
        "$root/debootstrap/debpaths" RS= "$idx.full" >"$idx"
    [ -s "$idx" ] || die "filtering $idx left nothing"
done

# In the first stage debootstrap makes /proc a link to the host's /proc; the
# guest needs a directory to mount on.
for d in proc sys; do
    if [ -L "$root/$d" ] || [ ! -d "$root/$d" ]; then
        rm -f "$root/$d"
        mkdir -m 0555 "$root/$d"
    fi
done

# 2. The kernel's modules (with modules.dep), for udev and modprobe on the disk.
moddir=$(readlink -f "$D/modules")
[ -f "$moddir/modules.dep" ] || die "no modules.dep in $moddir"
mkdir -p "$root/usr/lib/modules"
cp -a "$moddir" "$root/usr/lib/modules/$kver"
install -m 0755 "$here/rootfs/setup" "$root/vessel-setup"
# Our files (network, ssh units, scripts): owned by root, 0755 if executable in
# git, else 0644, whatever the checkout's umask. guest/rootfs/setup enables them.
(cd "$here/rootfs/overlay" && find . -type f) | while read -r f; do
    mode=0644
    [ -x "$here/rootfs/overlay/$f" ] && mode=0755
    install -D -o root -g root -m "$mode" "$here/rootfs/overlay/$f" "$root/$f"
done

# 3. The ext4 image, filled from the tree (ownership, modes, links, devices kept).
img=$work/debian.img
mke2fs -q -t ext4 -L vessel-root -d "$root" "$img" "$size" >/dev/null || die "mke2fs failed"
[ $keep -eq 1 ] || rm -rf "$root"
if [ -n "$stage1_only" ]; then
    mv "$img" "$stage1_only"
    msg "first stage done in $(($(date +%s) - t_start)) s: $stage1_only (second stage not run)"
    exit 0
fi

# 4. The second stage, inside a guest. The initramfs mounts /dev/vda and runs
# /vessel-setup as init; it powers off when done. panic=1 with no-reboot: a
# crash of PID 1 ends the VM instead of hanging it.
cpus=${VESSEL_ROOTFS_CPUS:-$(n=$(nproc) && echo $((n < 4 ? n : 4)))}
cmdline="console=ttyS0 root=/dev/vda rw init=/vessel-setup panic=1"
if [ "$runner" = vessel ]; then
    vm=("$vessel_bin" run --cpus "$cpus" --memory 1G --no-reboot
        --kernel "$D/Image" --initrd "$D/initramfs.cpio.gz" --cmdline "$cmdline" --disk "$img")
else
    # shellcheck disable=SC2054 # commas belong to QEMU's option syntax
    vm=(qemu-system-riscv64 -M virt -nographic -smp "$cpus" -m 1G -no-reboot
        -bios "$D/fw_dynamic.bin" -kernel "$D/Image" -initrd "$D/initramfs.cpio.gz"
        -append "$cmdline" -drive "if=none,file=$img,format=raw,id=d0,discard=unmap"
        -device virtio-blk-device,drive=d0)
fi
# shellcheck disable=SC2206 # split on purpose
extra=(${VESSEL_ROOTFS_VM_ARGS:-})
vm+=("${extra[@]}")
log=$work/stage2.log
msg "second stage in $runner ($cpus CPUs; log: $log); this takes a while"
t2=$(date +%s)
rc=0
timeout --kill-after=10 "$timeout_s" "${vm[@]}" </dev/null >"$log" 2>&1 || rc=$?
t_stage2=$(($(date +%s) - t2))
if ! grep -aq '^VESSEL-ROOTFS-OK' "$log"; then
    grep -a 'VESSEL-ROOTFS-FAIL\|vessel-init:' "$log" >&2 || tail -n 20 "$log" >&2
    [ $rc -eq 124 ] && msg "the second stage did not finish within $timeout_s s (VESSEL_ROOTFS_TIMEOUT)"
    die "second stage failed in $runner (status $rc, log: $log)"
fi
[ $rc -eq 0 ] || die "$runner exited with status $rc after the second stage (log: $log)"

# 5. Checks on the host: a clean file system, setup finished and removed.
e2fsck -fn "$img" >"$work/e2fsck.log" 2>&1 || die "e2fsck found problems (log: $work/e2fsck.log)"
dbg() { debugfs -R "$1" "$img" 2>/dev/null; }
dbg "cat /etc/vessel-rootfs" | grep -q '^vessel Debian root disk' || die "no /etc/vessel-rootfs on the image"
dbg "stat /vessel-setup" | grep -q 'Inode:' && die "/vessel-setup is still on the image"
dbg "stat /debootstrap" | grep -q 'Inode:' && die "/debootstrap is still on the image"
dbg "ls /etc/ssh" | grep -q 'ssh_host_' && die "SSH host keys are on the image (each VM makes its own)"
status=$(dbg "cat /var/lib/dpkg/status")
npkg=$(awk '/^Status: install ok installed/{n++} END{print n+0}' <<<"$status")
[ "$npkg" -gt 50 ] || die "only $npkg packages installed on the image"
while read -r p; do
    awk -v p="$p" '$1=="Package:"{c=($2==p)} c && /^Status: install ok installed/{f=1} END{exit !f}' \
        <<<"$status" || die "package $p is not installed on the image"
done < <(grep -v '^#' "$here/rootfs/packages" | tr -s ' \n' '\n' | grep .)

new=$G/.debian.new
rm -rf "$new"
mkdir -p "$new"
mv "$img" "$new/debian.img"
{
    echo "# Debian root disk, built by guest/build-rootfs.sh"
    echo "suite $suite"
    echo "mirror $mirror"
    echo "kernel-release $kver"
    echo "size $size"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) runner $runner cpus $cpus"
    echo "time stage1 ${t_stage1}s stage2 ${t_stage2}s"
    echo "used-bytes $(($(stat -c %b "$new/debian.img") * $(stat -c %B "$new/debian.img")))"
    awk '$1=="Package:"{p=$2} $1=="Version:"{v=$2}
         /^$/{if (p != "" && ok) print "package", p, v; p=""; v=""; ok=0}
         /^Status: install ok installed/{ok=1}
         END{if (p != "" && ok) print "package", p, v}' <<<"$status" | sort
    echo "inputs $inputs"
} >"$new/versions.txt"
rm -rf "$G/.debian.old"
[ -e "$out" ] && mv "$out" "$G/.debian.old"
mv "$new" "$out"
rm -rf "$G/.debian.old"
msg "Debian root disk built in $out/debian.img ($npkg packages; first stage ${t_stage1} s," \
    "second stage ${t_stage2} s in $runner, total $(($(date +%s) - t_start)) s)"
