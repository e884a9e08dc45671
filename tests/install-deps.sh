#!/usr/bin/env bash
# install-deps.sh: make a bare Debian 12 ready to build and test mod_agentchat
# (called by `make deps`).  Installs only the apt packages dpkg says are missing
# (apt-get update only then), keeps an existing node, and runs `npm ci` in
# tests/ when node_modules is missing or older than package-lock.json.
# Runs as root, or through sudo when not root.
set -euo pipefail

PACKAGES=(apache2 apache2-dev libcurl4-openssl-dev libjansson-dev libssl-dev libcmocka-dev
          pkg-config openssl make gcc python3 apache2-utils nodejs npm chromium)
TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    case "$pkg" in
        # An existing node (e.g. NodeSource's nodejs, which bundles npm, or a
        # node on PATH installed outside apt) is kept: never replace it.
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        echo "install-deps: missing packages (${missing[*]}) and neither root nor sudo" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        "${missing[@]}"
else
    echo "install-deps: apt packages present"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "install-deps: node $(node --version) found; the tests need node >= 20" >&2
    exit 1
fi

# npm ci when node_modules is missing or older than the lockfile.
lock="$TESTS_DIR/package-lock.json"
stamp="$TESTS_DIR/node_modules/.package-lock.json"
if [ ! -d "$TESTS_DIR/node_modules" ] || [ ! -e "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    echo "install-deps: npm ci in $TESTS_DIR"
    (cd "$TESTS_DIR" && npm ci --no-audit --no-fund)
else
    echo "install-deps: node_modules up to date"
fi
