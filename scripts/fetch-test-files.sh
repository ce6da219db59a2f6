#!/usr/bin/env bash
# Real files that no one in this project wrote, for the reader tests: Debian's python3-pydicom ships DICOM
# test files in many transfer syntaxes plus a 12-lead ECG (waveform_ecg.dcm); python3-nibabel ships NIfTI
# and Siemens DICOM files. The .deb packages are downloaded (not installed) and unpacked under
# .cache/debian-test-files; nothing is committed. Tests find them through tests/helpers/real-files.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/debian-test-files
marker="$dest/.complete"
[ -f "$marker" ] && { echo "fetch-test-files: already present"; exit 0; }
command -v apt-get >/dev/null || { echo "fetch-test-files: needs apt-get (Debian/Ubuntu)" >&2; exit 1; }
rm -rf "$dest"; mkdir -p "$dest/debs"
# apt-get download needs current package lists; refresh them once when they are missing.
if ! apt-cache show python3-pydicom >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "fetch-test-files: package lists missing; run: sudo apt-get update" >&2; exit 1; }
  apt-get update -qq
fi
(cd "$dest/debs" && apt-get download -qq python3-pydicom python3-nibabel 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done
pkgs="$dest/root/usr/lib/python3/dist-packages"
ln -sfn "root/usr/lib/python3/dist-packages/pydicom/data/test_files" "$dest/pydicom"
ln -sfn "root/usr/lib/python3/dist-packages/nibabel/tests/data" "$dest/nibabel"
ln -sfn "root/usr/lib/python3/dist-packages/nibabel/nicom/tests/data" "$dest/nibabel-nicom"
[ -f "$pkgs/pydicom/data/test_files/waveform_ecg.dcm" ] || { echo "fetch-test-files: waveform_ecg.dcm missing from python3-pydicom" >&2; exit 1; }
rm -rf "$dest/debs"
touch "$marker"
echo "fetch-test-files: $(find "$dest/root" -type f | wc -l) files in $dest"
