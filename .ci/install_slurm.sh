#!/usr/bin/env bash
# Installs what the `slurm` tests (tests/test_slurm.py) need: SLURM 22.05 with munge, and
# slurmdbd + MariaDB so that `sacct` works as on a production cluster (Debian 12 packages).
# Idempotent: installs only what is missing. Needs root or sudo.
# The packages' own services are not started (the test starts its daemons itself, by PID).
set -euo pipefail

packages=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server mariadb-client)

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

# Keep the maintainer scripts from starting munge, mariadb, slurmctld... as services:
# a policy-rc.d that denies every start, only for the time of the install.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

echo "crossglue: installing SLURM test packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
