#!/bin/bash
# Install the host packages listed in scripts/host-deps.txt that are missing.
# Fast no-op when everything is present; runs non-interactively (no stdin needed).
# Usage: scripts/setup-host.sh [--check]   (--check: only report, exit 1 if any is missing)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deps_file="$here/host-deps.txt"
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$deps_file" | grep -v '^$' | sort -u)

missing=()
for p in "${wanted[@]}"; do
    # "install ok installed" is the only state that counts as present.
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-host: all ${#wanted[@]} host packages present"
    exit 0
fi
echo "setup-host: missing: ${missing[*]}"
[ $check_only -eq 1 ] && exit 1

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup-host: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q </dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "setup-host: installed ${#missing[@]} package(s)"
