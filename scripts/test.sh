#!/usr/bin/env bash
# Sets up everything the tests need, then runs ruff, mypy and the whole test suite.
# pytest exits non-zero when no test ran, and so does this script.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
echo "== ruff" && .venv/bin/ruff check src tests benchmarks
echo "== mypy" && .venv/bin/mypy
echo "== pytest" && .venv/bin/pytest "$@"
