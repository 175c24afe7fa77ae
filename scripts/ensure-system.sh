#!/usr/bin/env bash
# Make sure the system packages FlowHQ needs are installed: Chromium (the bot's
# browser) and Redis (the broker); for the tests also libzbar (they decode QR codes), Node.js
# and npm (whatsapp-web.js is the simulator's conformance test) and openssl (its certificate).
# Installs with apt where it can; otherwise names exactly what is missing.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || [ -n "${PUPPETEER_EXECUTABLE_PATH:-}" ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${1:-}" = "--test" ]; then
  ldconfig -p 2>/dev/null | grep -q 'libzbar\.so\.0' || missing+=(libzbar0)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v pg_ctlcluster >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1 \
    || pg_isready -q -h 127.0.0.1 2>/dev/null || missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  echo ">> installing with apt: ${missing[*]}"
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "FlowHQ needs these system packages, and apt is not available to install them: ${missing[*]}" >&2
echo "Install them with your package manager (Chromium may instead be named by PUPPETEER_EXECUTABLE_PATH)." >&2
exit 1
