#!/usr/bin/env bash
# Installs what the pull/push tests run: Debian's docker-registry (distribution 2.8), unless
# it is there already. The tests start their own instances on loopback ports; the system
# service the package may start is stopped. Prints the binary's path.
set -euo pipefail

if ! command -v docker-registry >/dev/null 2>&1; then
    sudo_cmd=""
    if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq docker-registry >&2
    if command -v systemctl >/dev/null 2>&1; then
        $sudo_cmd systemctl stop docker-registry >/dev/null 2>&1 || true
    fi
fi
command -v docker-registry
