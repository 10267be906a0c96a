# Shared helpers for the guest build scripts. Source it; do not run it.
# shellcheck shell=bash

msg() { echo "guest: $*" >&2; }
die() {
    echo "guest: error: $*" >&2
    exit 1
}

# The cache lives outside the git tree. Same rule as the vessel binary:
# $VESSEL_CACHE, else $XDG_CACHE_HOME/vessel, else $HOME/.cache/vessel.
vessel_cache_dir() {
    if [ -n "${VESSEL_CACHE:-}" ]; then
        echo "$VESSEL_CACHE"
    elif [ -n "${XDG_CACHE_HOME:-}" ]; then
        echo "$XDG_CACHE_HOME/vessel"
    elif [ -n "${HOME:-}" ]; then
        echo "$HOME/.cache/vessel"
    else
        die "cannot place the cache: set VESSEL_CACHE, XDG_CACHE_HOME or HOME"
    fi
}

# Print "URI KEYRING" of the host's main Debian archive (not -security, not
# -updates/-backports), read from the host's apt sources at run time so that no
# mirror host is written into the repository. VESSEL_DEBIAN_MIRROR overrides.
host_debian_mirror() {
    local default_kr=/usr/share/keyrings/debian-archive-keyring.gpg
    if [ -n "${VESSEL_DEBIAN_MIRROR:-}" ]; then
        echo "$VESSEL_DEBIAN_MIRROR $default_kr"
        return 0
    fi
    local f files=()
    # deb822 files first (Debian 12 default), then one-line lists.
    [ -f /etc/apt/sources.list.d/debian.sources ] && files+=(/etc/apt/sources.list.d/debian.sources)
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && [ "$f" != /etc/apt/sources.list.d/debian.sources ] && files+=("$f")
    done
    for f in "${files[@]}"; do
        # A stanza is a blank-line separated block. Take the first "deb" stanza
        # whose suites include a plain release name (no "-" in it).
        awk -v dkr="$default_kr" '
            function flush() {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && plain) {
                    split(uris, u, /[ \t]+/)
                    print u[1], (kr != "" ? kr : dkr); found = 1; exit
                }
                types = ""; uris = ""; kr = ""; plain = 0
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^Types:/      { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^URIs:/       { sub(/^URIs:[ \t]*/, ""); uris = $0 }
            /^Signed-By:/  { sub(/^Signed-By:[ \t]*/, ""); if ($0 ~ /^\//) kr = $0 }
            /^Suites:/     { sub(/^Suites:[ \t]*/, ""); n = split($0, s, /[ \t]+/)
                             for (i = 1; i <= n; i++) if (s[i] != "" && s[i] !~ /-/) plain = 1 }
            END { if (!found) flush() }
        ' "$f" | head -n1 | grep . && return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [opts] URI SUITE COMPONENTS...
        awk -v dkr="$default_kr" '
            $1 != "deb" { next }
            { i = 2; kr = ""
              if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { if ($i ~ /signed-by=/) { kr = $i; sub(/.*signed-by=/, "", kr); sub(/\]$/, "", kr) } i++ }
                                if ($i ~ /signed-by=/) { kr = $i; sub(/.*signed-by=/, "", kr); sub(/\]$/, "", kr) } i++ }
              uri = $i; suite = $(i + 1)
              if (suite !~ /-/ && uri ~ /debian\/?$/) { print uri, (kr != "" ? kr : dkr); exit } }
        ' "$f" | head -n1 | grep . && return 0
    done
    return 1
}

# sha256 of a list of files/dirs' contents (for input stamps).
hash_inputs() {
    local p
    for p in "$@"; do
        if [ -d "$p" ]; then
            (cd "$p" && find . -type f -o -type l | LC_ALL=C sort | while read -r x; do
                printf '%s %s\n' "$x" "$(if [ -L "$x" ]; then readlink "$x"; else sha256sum <"$x" | cut -d' ' -f1; fi)"
                # Only the executable bit counts (as in git): the umask of the
                # checkout must not change the result.
                if [ -x "$x" ]; then printf '%s exec\n' "$x"; fi
            done)
        else
            printf '%s %s\n' "$(basename "$p")" "$(sha256sum <"$p" | cut -d' ' -f1)"
        fi
    done | sha256sum | cut -d' ' -f1
}
