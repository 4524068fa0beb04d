#!/usr/bin/env bash
# Build the training corpus under data/ (see docs/DATA.md); arguments go to scripts/fetch_data.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python scripts/fetch_data.py "$@"
