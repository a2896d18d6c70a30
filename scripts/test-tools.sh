#!/bin/sh
# The real programs e2e suites run against agentvault, as Debian packages: `clients` are what
# `run --placeholders` and `proxy` put behind agentvault (curl, Python requests for
# /usr/bin/python3, bubblewrap for --isolate); `shells` are what completion scripts are sourced in
# (bash, zsh); `compiler` builds the crash-point preload of the crash tests (cc: gcc, libc6-dev).
# Usage: test-tools.sh clients|shells|compiler…
# Installs the missing ones with apt-get when run as root; otherwise says what is missing and
# exits 1, so the suite fails clearly instead of skipping.
set -u

have_requests() {
  for python in python3 /usr/bin/python3; do
    "$python" -c 'import requests' >/dev/null 2>&1 && return 0
  done
  return 1
}

missing() {
  packages=""
  for group in "$@"; do
    case "$group" in
      clients)
        command -v curl >/dev/null 2>&1 || packages="$packages curl"
        have_requests || packages="$packages python3-requests"
        command -v bwrap >/dev/null 2>&1 || packages="$packages bubblewrap"
        ;;
      shells)
        command -v bash >/dev/null 2>&1 || packages="$packages bash"
        command -v zsh >/dev/null 2>&1 || packages="$packages zsh"
        ;;
      compiler)
        command -v cc >/dev/null 2>&1 || packages="$packages gcc"
        [ -e /usr/include/dlfcn.h ] || packages="$packages libc6-dev"
        ;;
      *)
        echo "test-tools: unknown group $group (clients, shells, compiler)" >&2
        exit 2
        ;;
    esac
  done
  echo "$packages"
}

packages=$(missing "$@") || exit 2
[ -z "$packages" ] && exit 0
if [ "$(id -u 2>/dev/null)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1; }
fi

packages=$(missing "$@")
if [ -n "$packages" ]; then
  echo "test-tools: missing$packages (install them: apt-get install -y$packages)" >&2
  exit 1
fi
