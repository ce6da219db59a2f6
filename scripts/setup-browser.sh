#!/usr/bin/env bash
# Installs Debian's Chromium for `npm run test:browser` (driven by playwright-core; never a downloaded browser).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then echo "setup-browser: chromium already installed"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "setup-browser: run as root: sudo bash scripts/setup-browser.sh" >&2; exit 1; fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "setup-browser: chromium installed"
