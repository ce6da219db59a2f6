#!/usr/bin/env bash
# Runs scripts/setup.sh when no Vulkan driver is installed; prints the one command to run when it cannot.
set -u
if ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then exit 0; fi
if [ "$(id -u)" = 0 ]; then exec bash "$(dirname "$0")/setup.sh"; fi
echo "No Vulkan driver found. Run once:  sudo bash scripts/setup.sh   (installs Mesa lavapipe, a CPU WebGPU adapter)" >&2
exit 1
