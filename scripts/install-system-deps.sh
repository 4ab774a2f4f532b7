#!/usr/bin/env bash
# install-system-deps.sh NAME...
#
# Make sure the Debian packages the tests/benchmarks need are installed, installing the
# missing ones with apt-get (as root, or via passwordless sudo). Known names and how
# their presence is checked:
#   postgresql   /usr/lib/postgresql/*/bin/initdb exists
#   wrk          `wrk` on PATH
#   chromium     `chromium` on PATH
#   anything else: `dpkg -s NAME`
#
# Runs `apt-get update` only when something must be installed. Never prompts.
# If apt-get cannot be used (not root, no network, ...), prints a loud warning and exits 0:
# the step that needs the package then fails with its own clear error (never a silent
# skip). CI runs as root, so there it always installs.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
me=system-deps

present() {
    case $1 in
        postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ;;
        wrk)        command -v wrk >/dev/null 2>&1 ;;
        chromium)   command -v chromium >/dev/null 2>&1 ;;
        *)          dpkg -s "$1" >/dev/null 2>&1 ;;
    esac
}

loud() {
    {
        echo
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!! $me: WARNING: $*"
        echo "!! Missing Debian package(s): ${missing[*]}"
        echo "!! Install them yourself (apt-get install ${missing[*]}); the steps that need"
        echo "!! them will FAIL until then."
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo
    } >&2
}

missing=()
for name in "$@"; do
    present "$name" || missing+=("$name")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    sudo=(sudo -n DEBIAN_FRONTEND=noninteractive)
else
    loud "not root (and no passwordless sudo), cannot run apt-get."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    loud "apt-get not found (not a Debian/Ubuntu system?)."
    exit 0
fi

echo "$me: installing ${missing[*]} with apt-get" >&2
if ! "${sudo[@]}" apt-get update -q </dev/null; then
    loud "apt-get update failed (no network?)."
    exit 0
fi
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null; then
    loud "apt-get install failed."
    exit 0
fi

still=()
for name in "${missing[@]}"; do
    present "$name" || still+=("$name")
done
if [[ ${#still[@]} -gt 0 ]]; then
    missing=("${still[@]}")
    loud "apt-get ran, but these are still not usable."
fi
exit 0
