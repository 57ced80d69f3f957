#!/usr/bin/env bash
# Installs the Debian packages the tests need, only those that are missing. Idempotent.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# systemd: systemd-analyze, which checks the units in packaging/systemd. chromium,
# chromium-driver and curl: the console's test drives headless Chromium through ChromeDriver
# (curl speaks WebDriver to it inside the test's namespace). clang and libbpf-dev: the agent's
# build compiles its BPF program (crates/agent/bpf).
for pkg in python3-venv iproute2 nftables tshark postgresql systemd chromium chromium-driver curl \
    clang libbpf-dev; do
    have "$pkg" || need+=("$pkg")
done
# Node.js for the Node SDK check: the machine's own node (Debian's or nodesource's, which
# bundles npm) if there is one, otherwise Debian's nodejs and npm.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -eq 0 ]; then
    echo "deps.sh: all packages present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# tshark's package asks whether non-root users may capture; answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
echo "deps.sh: installing ${need[*]}"
apt-get install -y -q "${need[@]}" || { apt-get update -q && apt-get install -y -q "${need[@]}"; }
