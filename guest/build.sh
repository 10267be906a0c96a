#!/bin/bash
# Build the default vessel guest into the cache (outside the git tree):
#   $CACHE/guest/default/{Image, fw_dynamic.bin, initramfs.cpio.gz, versions.txt}
#   $CACHE/guest/default/modules -> the kernel's module tree (with modules.dep)
#   $CACHE/guest/default/initramfs-modules  modules the initramfs holds for root=
# $CACHE = $VESSEL_CACHE, else $XDG_CACHE_HOME/vessel, else $HOME/.cache/vessel.
#
# Usage: guest/build.sh [--update] [--verify] [--force]
#   --update  re-resolve package versions from the Debian archive (network)
#   --verify  re-check the cached .debs against their recorded sha256
#   --force   rebuild the outputs even if they look up to date
# Warm cache: no network, no work, well under a second.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=guest/lib.sh
. "$here/lib.sh"

fetch_opts=() force=0
for a in "$@"; do
    case "$a" in
    --update | --verify) fetch_opts+=("$a") ;;
    --force) force=1 ;;
    -h | --help)
        sed -n '2,11p' "$0"
        exit 0
        ;;
    *) die "unknown option $a (see --help)" ;;
    esac
done

CACHE=$(vessel_cache_dir)
G=$CACHE/guest
mkdir -p "$G"
# One build at a time per cache.
exec 9>"$G/.lock"
flock 9

"$here/fetch.sh" "${fetch_opts[@]}"
manifest=$G/debs/manifest

# Record of what the outputs are made of: the package set and our own scripts.
inputs=$(
    {
        grep -v '^#' "$manifest"
        hash_inputs "$here/build.sh" "$here/lib.sh" "$here/mkcpio.py" "$here/initramfs"
    } | sha256sum | cut -d' ' -f1
)
out=$G/default
if [ $force -eq 0 ] && [ -f "$out/versions.txt" ] &&
    grep -qx "inputs $inputs" "$out/versions.txt" &&
    [ -s "$out/Image" ] && [ -s "$out/fw_dynamic.bin" ] && [ -s "$out/initramfs.cpio.gz" ] &&
    [ -d "$out/modules/" ]; then
    msg "default guest up to date in $out"
    exit 0
fi

# Unpack each package once into pkgs/<deb name>/ (never installed anywhere).
pkgdir() { echo "$G/pkgs/${1%.deb}"; }
while read -r name ver file sha; do
    case "$name" in '#'* | suite | mirror | release-date | '') continue ;; esac
    d=$(pkgdir "$file")
    [ -f "$d/.unpacked" ] && continue
    msg "unpacking $name $ver"
    rm -rf "$d"
    mkdir -p "$d"
    dpkg-deb -x "$G/debs/$file" "$d"
    touch "$d/.unpacked"
done <"$manifest"

field() { awk -v n="$1" -v c="$2" '$1==n{print $c}' "$manifest"; }
kpkg=$(awk '$1 ~ /^linux-image-/{print $1}' "$manifest")
kdir=$(pkgdir "$(field "$kpkg" 3)")
sbidir=$(pkgdir "$(field opensbi 3)")
bbdir=$(pkgdir "$(field busybox-static 3)")

# Kernel: /boot/vmlinux-<ver> is a raw RISC-V Image (EFI stub header).
kimg=$(ls "$kdir"/boot/vmlinux-* 2>/dev/null | head -n1)
[ -n "$kimg" ] || die "no boot/vmlinux-* in $kpkg"
kver=${kimg##*/vmlinux-}
[ "$(dd if="$kimg" bs=1 skip=56 count=4 status=none)" = "$(printf 'RSC\005')" ] ||
    die "$kimg has no RISC-V Image header magic"
# OpenSBI generic platform, fw_dynamic flavour.
fw=$(cd "$sbidir" && find . -path '*riscv64*' -name fw_dynamic.bin | sort | head -n1)
[ -n "$fw" ] || die "no riscv64 fw_dynamic.bin in opensbi"
bb=$bbdir/usr/bin/busybox
[ -x "$bb" ] || bb=$bbdir/bin/busybox
[ -x "$bb" ] || die "no busybox binary in busybox-static"

new=$G/.default.new
rm -rf "$new"
mkdir -p "$new"
cp "$kimg" "$new/Image"
cp "$sbidir/$fw" "$new/fw_dynamic.bin"

# Modules stay in the unpacked package; give them modules.dep (the package has
# none) and a stable path.
moddir=$kdir/usr/lib/modules/$kver
[ -d "$moddir" ] || moddir=$kdir/lib/modules/$kver
if [ ! -f "$moddir/modules.dep" ] && command -v depmod >/dev/null; then
    depmod -b "${moddir%/lib/modules/*}" "$kver" || msg "warning: depmod failed; modules.dep missing"
fi
ln -s "$(realpath --relative-to="$out" "$moddir")" "$new/modules"

# initramfs: busybox plus our files, all root-owned, mtime of the busybox build.
mtime=$(stat -c %Y "$bb")
spec=$new/initramfs.spec
cat >"$spec" <<EOS
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /proc 0555 0 0
dir /sys 0555 0 0
dir /tmp 1777 0 0
dir /run 0755 0 0
dir /root 0700 0 0
dir /mnt 0755 0 0
dir /var 0755 0 0
dir /bin 0755 0 0
dir /sbin 0755 0 0
dir /usr/bin 0755 0 0
dir /usr/sbin 0755 0 0
dir /usr/local/bin 0755 0 0
dir /usr/local/sbin 0755 0 0
dir /etc/rc.d 0755 0 0
file /bin/busybox $bb 0755 0 0
slink /bin/sh busybox 0777 0 0
slink /bin/cttyhack busybox 0777 0 0
slink /sbin/init ../bin/busybox 0777 0 0
tree / $here/initramfs
EOS
# Modules for a root disk (guest/initramfs/init, root=): virtio_mmio,
# virtio_blk, ext4, with their dependencies from modules.dep; crc32c_generic is
# the "crypto-crc32c" soft dependency of ext4 and jbd2 (modules.softdep).
{
    echo "# NAME PATH (relative to /lib/modules/$kver), dependencies first"
    awk -v want="virtio_mmio virtio_blk crc32c_generic ext4" '
        function name(p) { sub(/.*\//, "", p); sub(/\.ko.*/, "", p); gsub(/-/, "_", p); return p }
        function add(p) { if (!(p in seen)) { seen[p] = 1; print name(p), p } }
        { sub(/:$/, "", $1); line[name($1)] = $0 }
        END {
            n = split(want, w, " ")
            for (i = 1; i <= n; i++) {
                if (!(w[i] in line)) { print "missing module " w[i] > "/dev/stderr"; exit 1 }
                k = split(line[w[i]], f, /[ \t]+/)
                for (j = k; j >= 2; j--) add(f[j])  # modprobe loads the list from the end
                add(f[1])
            }
        }' "$moddir/modules.dep"
} >"$new/initramfs-modules" || die "kernel modules for the disk boot path not found in $moddir"
echo "file /lib/modules/initramfs-modules $new/initramfs-modules 0644 0 0" >>"$spec"
while read -r mname mpath; do
    case "$mname" in '#'*) continue ;; esac
    echo "file /lib/modules/$kver/$mpath $moddir/$mpath 0644 0 0" >>"$spec"
done <"$new/initramfs-modules"
"$here/mkcpio.py" --gzip --mtime "$mtime" -o "$new/initramfs.cpio.gz" "$spec"

{
    echo "# default vessel guest, built by guest/build.sh"
    grep -E '^(suite|mirror|release-date) ' "$manifest"
    echo "kernel-release $kver"
    awk 'NF==4 && $1 !~ /^#/ && $1 !~ /^(suite|mirror|release-date)$/ {print "package", $1, $2, $4}' "$manifest"
    echo "opensbi-file ${fw#./}"
    for f in Image fw_dynamic.bin initramfs.cpio.gz; do
        echo "sha256 $f $(sha256sum <"$new/$f" | cut -d' ' -f1)"
    done
    echo "inputs $inputs"
} >"$new/versions.txt"

rm -rf "$G/.default.old"
[ -e "$out" ] && mv "$out" "$G/.default.old"
mv "$new" "$out"
rm -rf "$G/.default.old"
msg "default guest built in $out (kernel $kver)"
