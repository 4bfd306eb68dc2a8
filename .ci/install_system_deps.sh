#!/usr/bin/env bash
# Installs the system tools crossglue runs (Debian/Ubuntu). Idempotent: installs only
# what is missing, so a second call costs a second. Needs root or sudo.
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
echo "crossglue: installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
