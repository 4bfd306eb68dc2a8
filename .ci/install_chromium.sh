#!/usr/bin/env bash
# Installs Debian's headless-capable chromium, used by tests/test_report.py to render the
# report. Idempotent: returns at once when chromium is already on PATH. Needs root or sudo.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
exec bash "$(dirname "$0")/install_system_deps.sh" chromium
