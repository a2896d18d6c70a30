#!/bin/sh
# Run a command against a real Secret Service (gnome-keyring) on a private D-Bus session bus, so
# tests can exercise @napi-rs/keyring the way a Linux desktop does.
#
#   scripts/with-secret-service.sh [--locked] COMMAND [ARG...]
#
# By default the login keyring is created (if needed) and unlocked with the password "pw", as
#   dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets; …'
# would. With --locked the daemon starts without unlocking: an existing keyring stays locked, as
# on a desktop before the user logs in (create it first with a run without --locked).
# gnome-keyring keeps its keyrings under $XDG_DATA_HOME (default ~/.local/share): point
# XDG_DATA_HOME (and HOME) at a temporary directory to leave the user's own keyring alone.
#
# Installs gnome-keyring and dbus with apt-get when they are missing (only as root, quietly).
# Exits with COMMAND's status, or 77 (the usual "skipped" status) when no Secret Service can be
# provided here; the reason goes to stderr.
set -u

if [ "${1:-}" = "--in-session" ]; then
  # Second stage, inside dbus-run-session: start the daemon in the foreground so we know its pid
  # (and can stop it afterwards), and wait until it is ready — gnome-keyring-daemon closes its
  # stdout once initialised, so end-of-file on the FIFO is the readiness event.
  shift
  locked=$1
  shift
  fifo=$(mktemp -u "${TMPDIR:-/tmp}/with-secret-service.XXXXXX")
  mkfifo -m 600 "$fifo" || exit 77
  if [ "$locked" = 1 ]; then
    gnome-keyring-daemon --foreground --components=secrets </dev/null >"$fifo" 2>/dev/null &
  else
    printf %s pw | gnome-keyring-daemon --foreground --unlock --components=secrets >"$fifo" 2>/dev/null &
  fi
  daemon=$!
  cat "$fifo" >/dev/null
  rm -f "$fifo"
  if ! kill -0 "$daemon" 2>/dev/null; then
    echo "with-secret-service: gnome-keyring-daemon did not start" >&2
    exit 77
  fi

  "$@"
  status=$?
  kill "$daemon" 2>/dev/null
  wait "$daemon" 2>/dev/null
  exit "$status"
fi

if [ "$#" -eq 0 ]; then
  echo "usage: $0 [--locked] COMMAND [ARG...]" >&2
  exit 2
fi

locked=0
if [ "$1" = "--locked" ]; then
  locked=1
  shift
fi

have_tools() {
  command -v dbus-run-session >/dev/null 2>&1 && command -v gnome-keyring-daemon >/dev/null 2>&1
}

if ! have_tools && [ "$(id -u 2>/dev/null)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  packages='gnome-keyring dbus dbus-daemon'
  # The package lists may be missing (fresh container): update once, then retry.
  apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1; }
fi

if ! have_tools; then
  echo "with-secret-service: dbus-run-session and gnome-keyring-daemon are not installed, and could not be installed (that needs root and apt-get)" >&2
  exit 77
fi

# dbus-daemon may warn that it cannot raise its fd limit in a container; that is harmless.
if ! dbus-run-session -- true >/dev/null 2>&1; then
  echo "with-secret-service: dbus-run-session cannot start a session bus here" >&2
  exit 77
fi

exec dbus-run-session -- sh "$0" --in-session "$locked" "$@"
