#!/usr/bin/env bash
# Sets up airlock, runs a small command inside `airlock run` (the sandbox: workspace writable,
# no credentials, the egress proxy its only way out) and shows its report; then shows what the
# agent would send from the current directory (`airlock flows`).
set -euo pipefail
here=$(pwd)
cd "$(dirname "$0")/.."
bash scripts/setup.sh
airlock="$(pwd)/.venv/bin/airlock"
cd "$here"

echo "== airlock run: a small command in the sandbox; the report of what left the machine follows" >&2
"$airlock" run -- python3 -c '
import os, urllib.request
home = os.path.expanduser("~")
print("inside the sandbox, in", os.getcwd())
print("~/.ssh inside:", os.listdir(home + "/.ssh") if os.path.isdir(home + "/.ssh") else "not there")
print("variables that look like credentials:", [n for n in os.environ if "TOKEN" in n or n.endswith("_KEY")] or "none")
try:
    urllib.request.urlopen("http://example.com/", timeout=10)
except OSError as error:  # the proxy refuses it: no rule allows example.com
    print("example.com:", error)
' || echo "(airlock run could not run here: see its message above)" >&2

echo "== airlock flows: every data flow for this directory" >&2
exec "$airlock" flows "$@"
