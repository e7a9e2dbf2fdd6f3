#!/usr/bin/env bash
# Sets up airlock in ./.venv, and bubblewrap (the sandbox of `airlock run`). With --dev, also
# the test tools and the system programs the tests use for real (Graphviz's dot; curl, git
# Node.js and Mercurial run inside the sandbox's tests). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SYSTEM_PACKAGES=(graphviz bubblewrap curl wget git nodejs mercurial postgresql)

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
if [[ "${1:-}" == "--dev" ]]; then
    command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
    command -v curl >/dev/null 2>&1 || need_apt+=(curl)
    command -v wget >/dev/null 2>&1 || need_apt+=(wget)  # a GnuTLS client, for the run's CA
    command -v git >/dev/null 2>&1 || need_apt+=(git)
    command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
    command -v hg >/dev/null 2>&1 || need_apt+=(mercurial)
    # the collector's tests start a throwaway PostgreSQL cluster of their own (initdb, pg_ctl)
    command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
        || need_apt+=(postgresql)
fi
if ((${#need_apt[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing system packages: ${need_apt[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    elif [[ "${1:-}" == "--dev" ]]; then
        echo "setup: the tests need these system packages: ${SYSTEM_PACKAGES[*]} (install them as root)" >&2
        exit 2
    else
        echo "setup: 'airlock run' needs bubblewrap (install it as root: apt-get install bubblewrap)" >&2
    fi
fi

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
target=".[all]"  # every capability: the quick start shows them all
[[ "${1:-}" == "--dev" ]] && target=".[dev]"
# pip's notes about unreachable extra index locations are noise; real errors still show.
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$target" \
    2> >(grep -v "^WARNING: Location .* is ignored" >&2)
.venv/bin/python -m compileall -q src >/dev/null 2>&1 || true  # first runs start from bytecode

# The reference agent, for the integration test that runs it through the proxy (exact version).
REFERENCE_AGENT="@anthropic-ai/claude-code@2.1.328"
if [[ "${1:-}" == "--dev" ]] && command -v npm >/dev/null 2>&1 \
    && ! grep -qs '"version": "2.1.328"' .cache/reference-agent/node_modules/@anthropic-ai/claude-code/package.json; then
    npm install --prefix .cache/reference-agent --no-audit --no-fund --no-save --loglevel=error \
        "$REFERENCE_AGENT" >/dev/null
fi
