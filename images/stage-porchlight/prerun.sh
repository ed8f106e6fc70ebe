#!/bin/bash
# pi-gen: start this stage from the Raspberry Pi OS Lite root that stage2 made.
set -eu
if [ ! -d "${ROOTFS_DIR}" ]; then
    copy_previous
fi
