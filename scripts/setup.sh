#!/usr/bin/env bash
# Installs what berth's tests need on a fresh Debian machine: Deno (from npm) and the reference
# tools the tests use to make and check images (skopeo, umoci, busybox-static, podman, ...).
set -euo pipefail
if ! command -v deno >/dev/null 2>&1; then
  npm install -g deno@2.9.6 >/dev/null
fi
packages=(skopeo umoci busybox-static docker-registry podman containerd runc crun debootstrap
  pigz zstd hyperfine apache2-utils iproute2 attr python3 tar gzip openssl util-linux time)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
deno --version | head -1
