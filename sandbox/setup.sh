#!/usr/bin/env bash
# Installs everything the demo and the tests need on a Debian 12 machine, idempotently:
# Debian packages, a Python venv (.venv) with the project, the npm SMSC, the cached
# Asterisk 22 root (built from Debian sid with mmdebstrap, outside the repository),
# and the default Mandarin prompts. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(python3 python3-venv python3-dev gcc mmdebstrap sip-tester ffmpeg espeak-ng sox
              postgresql nodejs npm iproute2 procps util-linux ca-certificates tshark kamailio kannel
              chromium chromium-driver fonts-wqy-microhei)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A machine may already have node and npm from elsewhere: then Debian's are not needed.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # tshark's wireshark-common asks whether non-root users may capture: no (captures run as root).
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.hotline-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "setup: installing the project into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi

if [ -f sandbox/smsc/package.json ]; then
  if [ ! -d sandbox/smsc/node_modules ] || [ sandbox/smsc/package-lock.json -nt sandbox/smsc/node_modules ]; then
    echo "setup: installing the npm SMSC"
    (cd sandbox/smsc && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

echo "setup: Asterisk root (cached outside the repository)"
.venv/bin/python -m sandbox.asterisk build
echo "setup: done"
