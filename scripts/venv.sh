#!/usr/bin/env bash
# Creates <repo>/.venv (idempotent) and installs tests/conformance/requirements.txt into it,
# again only when that file changed (a stamp holds its hash). Prints the venv path.
#   scripts/venv.sh && .venv/bin/pytest tests/conformance
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TMIRROR_VENV:-$repo/.venv}"
req="$repo/tests/conformance/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

log() { echo "venv.sh: $*" >&2; }

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        # Debian ships ensurepip separately (python3-venv).
        rm -rf "$venv"
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            log "python3 -m venv failed; installing python3-venv"
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y python3-venv >&2 || { apt-get update >&2 && apt-get install -y python3-venv >&2; }
            "$python" -m venv "$venv"
        else
            log "python3 -m venv failed; install python3-venv (apt-get install python3-venv) and retry"
            exit 1
        fi
    fi
    log "created $venv"
fi

want="$(sha256sum "$req" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    log "installing $(basename "$req") into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$want" > "$stamp"
fi

echo "$venv"
