#!/usr/bin/env bash
# Installs a CPU WebGPU adapter (Mesa lavapipe, Vulkan on the CPU) on Debian 12 when none is present.
# Mesa 22 from bookworm main is too old for Dawn, so lavapipe comes from bookworm-backports.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && ldconfig -p | grep -q 'libvulkan.so.1'; then
  echo "setup: lavapipe already installed"; exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup: installing lavapipe needs root. Run: sudo bash scripts/setup.sh" >&2; exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup: no apt-get. Install Mesa >= 24 lavapipe (mesa-vulkan-drivers) and libvulkan1 with your package manager." >&2; exit 1
fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  uri=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$uri" ] || { echo "setup: cannot find the Debian mirror in apt sources" >&2; exit 1; }
  echo "deb $uri bookworm-backports main" > /etc/apt/sources.list.d/backports.list
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
echo "setup: lavapipe installed"
