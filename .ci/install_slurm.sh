#!/usr/bin/env bash
# Installs what the `slurm` tests (tests/test_slurm.py) need: SLURM 22.05 with munge, and
# slurmdbd + MariaDB so that `sacct` works as on a production cluster (Debian 12 packages).
# The test starts its daemons itself, by PID; the packages' services are not started.
set -euo pipefail
exec bash "$(dirname "$0")/install_system_deps.sh" \
  munge slurmctld slurmd slurm-client slurmdbd mariadb-server mariadb-client
