#!/usr/bin/env bash
# Installs the system tools crossglue runs (Debian/Ubuntu), plus any packages named as
# arguments. Idempotent: installs only what is missing, so a second call costs a second.
# Needs root or sudo. Packages' own services are not started (no daemon is left running).
set -euo pipefail

packages=(bedtools tabix macs)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "crossglue: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi

# A policy-rc.d that denies every service start, only for the time of the install, keeps
# maintainer scripts from starting munge, mariadb, slurmctld... as services.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

echo "crossglue: installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
