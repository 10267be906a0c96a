#!/bin/bash
# Resolve and download the riscv64 Debian packages the default guest is made of,
# through an apt configuration of our own under $CACHE/apt (own sources, lists,
# archives and an empty dpkg status). The host's apt set-up is never modified and
# nothing is installed: the .debs are only downloaded and later unpacked.
#
# Usage: guest/fetch.sh [--update] [--verify]
#   Without --update, a complete earlier download ($CACHE/guest/debs/manifest) is
#   reused as is (no network). --update re-reads the archive and takes the newest
#   versions. --verify re-checks the sha256 of the cached .debs (a mismatch
#   downloads them again). Env: VESSEL_GUEST_SUITES (default "trixie forky sid": first whose
#   index downloads and verifies), VESSEL_DEBIAN_MIRROR (default: host's apt config).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=guest/lib.sh
. "$here/lib.sh"

update=0 verify=0
for a in "$@"; do
    case "$a" in
    --update) update=1 ;;
    --verify) verify=1 ;;
    *) die "fetch.sh: unknown option $a" ;;
    esac
done

CACHE=$(vessel_cache_dir)
A=$CACHE/apt
D=$CACHE/guest/debs
manifest=$D/manifest

# Every .deb of the manifest present. Their sha256 was checked when they were
# downloaded (and apt checked them against the signed index); --verify re-checks.
manifest_complete() {
    [ -f "$manifest" ] || return 1
    local name ver file sha
    while read -r name ver file sha; do
        case "$name" in '#'* | suite | mirror | release-date | '') continue ;; esac
        [ -s "$D/$file" ] || return 1
        if [ $verify -eq 1 ]; then
            [ "$(sha256sum <"$D/$file" | cut -d' ' -f1)" = "$sha" ] || {
                msg "$file does not match its recorded sha256"
                return 1
            }
        fi
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
# With a manifest and no --update, fetch exactly the recorded versions again
# (a .deb went missing or failed --verify): reproducible, no silent upgrade.
pinned=()
if [ $update -eq 0 ] && [ -f "$manifest" ]; then
    suites=$(awk '$1=="suite"{print $2}' "$manifest")
    mapfile -t pinned < <(awk 'NF==4 && $1!~/^#/ && $1!~/^(suite|mirror|release-date)$/{print $1 "=" $2}' "$manifest")
    msg "re-fetching the recorded versions: ${pinned[*]}"
fi
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

if [ ${#pinned[@]} -gt 0 ]; then
    wanted=("${pinned[@]}")
else
    # The kernel metapackage depends on the versioned image package; follow it.
    kmeta_ver=$(cand linux-image-riscv64)
    kpkg=$(vapt apt-cache show "linux-image-riscv64=$kmeta_ver" | sed -n 's/^Depends: //p' |
        head -n1 | tr ',|' '\n\n' | sed 's/^ *//; s/ .*//' |
        grep -E '^linux-image-[0-9].*-riscv64$' | head -n1)
    [ -n "$kpkg" ] || die "cannot find the kernel image package linux-image-riscv64 depends on"
    wanted=()
    for p in "$kpkg" opensbi busybox-static; do
        v=$(cand "$p")
        [ -n "$v" ] && [ "$v" != "(none)" ] || die "package $p not found in $suite/riscv64"
        wanted+=("$p=$v")
    done
fi
tmp=$(mktemp -d "$D/.dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
{
    echo "# guest packages: name version file sha256 (written by guest/fetch.sh)"
    echo "suite $suite"
    echo "mirror $mirror"
    echo "release-date $release_date"
} >"$tmp/manifest"
for pv in "${wanted[@]}"; do
    p=${pv%%=*} v=${pv#*=}
    msg "downloading $p $v"
    (cd "$tmp" && vapt apt-get -q download "$p=$v" </dev/null >"$A/log/download-$p.log" 2>&1) ||
        die "download of $p=$v failed (see $A/log/download-$p.log)$([ ${#pinned[@]} -gt 0 ] &&
            echo "; if that version left the archive, run guest/build.sh --update")"
    f=$(cd "$tmp" && ls "${p}"_*.deb)
    echo "$p $v $f $(sha256sum <"$tmp/$f" | cut -d' ' -f1)" >>"$tmp/manifest"
done
# Replace the previous set only once the new one is complete.
find "$D" -maxdepth 1 -name '*.deb' -delete
mv "$tmp"/*.deb "$D"/
mv "$tmp/manifest" "$manifest"
msg "packages from $suite: $(awk 'NF==4 && $1!~/^#/{printf "%s=%s ", $1, $2}' "$manifest")"
