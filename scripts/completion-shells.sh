#!/bin/sh
# The shells the completion e2e suite sources agentvault's completion scripts in: bash and zsh.
# Installs the missing ones with apt-get when run as root; otherwise says what is missing and
# exits 1, so the suite fails clearly instead of skipping.
set -u

missing() {
  packages=""
  command -v bash >/dev/null 2>&1 || packages="$packages bash"
  command -v zsh >/dev/null 2>&1 || packages="$packages zsh"
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
  echo "completion-shells: missing$packages (install them: apt-get install -y$packages)" >&2
  exit 1
fi
