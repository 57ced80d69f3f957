#!/usr/bin/env bash
# Installs the Node.js conformance check's packages (tests/conformance/node: Huawei's official
# Node.js SDK, exact versions pinned in package-lock.json) with `npm ci` into
# tests/conformance/node/node_modules, again only when package.json or package-lock.json changed
# (a stamp in node_modules holds their hash). Idempotent, like scripts/venv.sh. Prints the
# directory. Needs node >= 18 and npm on PATH (CI machines have both); fails if they are missing.
#   scripts/node-deps.sh && node tests/conformance/node/sdk-errors.js
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/tests/conformance/node"
stamp="$dir/node_modules/.tmirror-lock.sha256"

log() { echo "node-deps.sh: $*" >&2; }

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "'$tool' not found on PATH: the conformance suite checks Huawei's Node.js SDK and needs"
        log "node >= 18 with npm (Debian: apt-get install nodejs npm, or the nodesource packages)"
        exit 1
    fi
done
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
    log "node $(node --version) is too old: the Node.js SDK check needs node >= 18"
    exit 1
fi

want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    log "installing $dir/package-lock.json (npm ci)"
    # --ignore-scripts: the SDK needs no install scripts; nothing from the registry runs here.
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    echo "$want" > "$stamp"
fi

echo "$dir"
