#!/bin/bash
# Resolve and download the riscv64 Debian packages the default guest is made of,
# through an apt configuration of our own under $CACHE/apt (own sources, lists,
# archives and an empty dpkg status). The host's apt set-up is never modified and
# nothing is installed: the .debs are only downloaded and later unpacked.
#
# Usage: guest/fetch.sh [--update]
#   Without --update, a complete earlier download ($CACHE/guest/debs/manifest) is
#   reused as is (no network). --update re-reads the archive and takes the newest
#   versions. Env: VESSEL_GUEST_SUITES (default "trixie forky sid": first whose
#   index downloads and verifies), VESSEL_DEBIAN_MIRROR (default: host's apt config).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=guest/lib.sh
. "$here/lib.sh"

update=0
[ "${1:-}" = "--update" ] && update=1

CACHE=$(vessel_cache_dir)
A=$CACHE/apt
D=$CACHE/guest/debs
manifest=$D/manifest

manifest_complete() {
    [ -f "$manifest" ] || return 1
    local name ver file sha
    while read -r name ver file sha; do
        case "$name" in '#'* | suite | mirror | release-date | '') continue ;; esac
        [ -f "$D/$file" ] || return 1
        [ "$(sha256sum <"$D/$file" | cut -d' ' -f1)" = "$sha" ] || return 1
    done <"$manifest"
}

if [ $update -eq 0 ] && manifest_complete; then
    msg "packages up to date ($(awk '$1=="suite"{print $2}' "$manifest")); --update to re-resolve"
    exit 0
fi

read -r mirror keyring < <(host_debian_mirror) ||
    die "no Debian archive found in the host's apt sources; set VESSEL_DEBIAN_MIRROR=<URL of a Debian mirror>"
[ -r "$keyring" ] || die "keyring $keyring not readable; install debian-archive-keyring"

mkdir -p "$A"/etc/apt.conf.d "$A"/etc/preferences.d "$A"/etc/trusted.gpg.d "$A"/etc/sources.list.d \
    "$A"/lists/partial "$A"/archives/partial "$A"/cache "$A"/dpkg "$A"/log "$D"
: >"$A/dpkg/status"
# Read first by apt (APT_CONFIG), so the host's apt.conf.d hooks are never loaded.
cat >"$A/apt.conf" <<EOC
Dir::Etc::Parts "$A/etc/apt.conf.d";
Dir::Etc::Main "/dev/null";
EOC

vapt() {
    local tool=$1
    shift
    # Sandbox user root: the cache usually sits in a home directory _apt cannot enter.
    local sandbox=()
    [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
    APT_CONFIG="$A/apt.conf" "$tool" \
        -o Dir::Etc::SourceList="$A/etc/sources.list" \
        -o Dir::Etc::SourceParts="$A/etc/sources.list.d" \
        -o Dir::Etc::Preferences="$A/etc/preferences" \
        -o Dir::Etc::PreferencesParts="$A/etc/preferences.d" \
        -o Dir::Etc::Trusted="$A/etc/trusted.gpg" \
        -o Dir::Etc::TrustedParts="$A/etc/trusted.gpg.d" \
        -o Dir::State="$A/state" \
        -o Dir::State::Lists="$A/lists" \
        -o Dir::State::status="$A/dpkg/status" \
        -o Dir::Cache="$A/cache" \
        -o Dir::Cache::Archives="$A/archives" \
        -o Dir::Log="$A/log" \
        -o APT::Architecture=riscv64 \
        -o APT::Architectures::=riscv64 \
        -o Acquire::Languages=none \
        -o Acquire::Retries=3 \
        "${sandbox[@]}" "$@"
}

suites=${VESSEL_GUEST_SUITES:-trixie forky sid}
suite=
for s in $suites; do
    cat >"$A/etc/sources.list.d/guest.sources" <<EOS
Types: deb
URIs: $mirror
Suites: $s
Components: main
Architectures: riscv64
Signed-By: $keyring
EOS
    : >"$A/etc/sources.list"
    msg "updating package index: $mirror $s riscv64"
    # --error-on=any: a failed download or a signature that does not verify is an
    # error, not a warning, so we move on to the next suite.
    if vapt apt-get -q update --error-on=any </dev/null >"$A/log/update-$s.log" 2>&1 &&
        vapt apt-cache show linux-image-riscv64 >/dev/null 2>&1; then
        suite=$s
        break
    fi
    msg "suite $s unusable (see $A/log/update-$s.log), trying the next one"
done
[ -n "$suite" ] || die "no usable suite among: $suites (logs in $A/log)"

release_date=$(sed -n 's/^Date: //p' "$A"/lists/*_dists_"${suite}"_InRelease 2>/dev/null | head -n1)

# Newest candidate version of a package ("" if none).
cand() { vapt apt-cache policy "$1" 2>/dev/null | awk '$1=="Candidate:"{print $2}'; }

# The kernel metapackage depends on the versioned image package; follow it.
kmeta_ver=$(cand linux-image-riscv64)
kpkg=$(vapt apt-cache show "linux-image-riscv64=$kmeta_ver" | sed -n 's/^Depends: //p' | head -n1 |
    tr ',|' '\n\n' | sed 's/^ *//; s/ .*//' | grep -E '^linux-image-[0-9].*-riscv64$' | head -n1)
[ -n "$kpkg" ] || die "cannot find the kernel image package linux-image-riscv64 depends on"

pkgs=("$kpkg" opensbi busybox-static)
tmp=$(mktemp -d "$D/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
{
    echo "# guest packages: name version file sha256 (written by guest/fetch.sh)"
    echo "suite $suite"
    echo "mirror $mirror"
    echo "release-date $release_date"
} >"$tmp/manifest"
for p in "${pkgs[@]}"; do
    v=$(cand "$p")
    [ -n "$v" ] && [ "$v" != "(none)" ] || die "package $p not found in $suite/riscv64"
    msg "downloading $p $v"
    (cd "$tmp" && vapt apt-get -q download "$p=$v" </dev/null >"$A/log/download-$p.log" 2>&1) ||
        die "download of $p=$v failed (see $A/log/download-$p.log)"
    f=$(cd "$tmp" && ls "${p}"_*.deb)
    echo "$p $v $f $(sha256sum <"$tmp/$f" | cut -d' ' -f1)" >>"$tmp/manifest"
done
# Replace the previous set only once the new one is complete.
find "$D" -maxdepth 1 -name '*.deb' -delete
mv "$tmp"/*.deb "$D"/
mv "$tmp/manifest" "$manifest"
msg "packages from $suite: $(awk 'NF==4 && $1!~/^#/{printf "%s=%s ", $1, $2}' "$manifest")"
