#!/bin/sh
# The real clients the `run --placeholders` e2e suite puts behind agentvault's proxy: curl, Python
# requests (Debian's python3-requests, for /usr/bin/python3) and bubblewrap (for --isolate).
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
  command -v curl >/dev/null 2>&1 || packages="$packages curl"
  have_requests || packages="$packages python3-requests"
  command -v bwrap >/dev/null 2>&1 || packages="$packages bubblewrap"
  echo "$packages"
}

packages=$(missing)
[ -z "$packages" ] && exit 0
if [ "$(id -u 2>/dev/null)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1; }
fi

packages=$(missing)
if [ -n "$packages" ]; then
  echo "placeholder-clients: missing$packages (install them: apt-get install -y$packages)" >&2
  exit 1
fi
