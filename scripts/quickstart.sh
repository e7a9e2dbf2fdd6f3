#!/usr/bin/env bash
# Sets up airlock and shows what the agent would send from the current directory.
set -euo pipefail
here=$(pwd)
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd "$here"
exec "$(dirname "$0")/../.venv/bin/airlock" flows "$@"
