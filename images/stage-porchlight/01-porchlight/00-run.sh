#!/bin/bash
# Lay Porchlight into the image with the same script the image tests run (assemble-root),
# inside the target chroot so users, groups and unit links are made by the target's own tools.
# images/build puts assemble-root, files/, boot/, README.md, wheels/, release.env and
# tuf-root.json (the release repository's root metadata) in files/ next to this script.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bundle="$here/files"
for needed in assemble-root files boot README.md wheels release.env tuf-root.json; do
    if [ ! -e "$bundle/$needed" ]; then
        echo "stage-porchlight: $bundle/$needed is missing; build with images/build, not pi-gen alone" >&2
        exit 1
    fi
done
# shellcheck source=/dev/null
. "$bundle/release.env"

rm -rf "${ROOTFS_DIR}/tmp/porchlight-image"
cp -a "$bundle" "${ROOTFS_DIR}/tmp/porchlight-image"

on_chroot <<CHROOT
set -eu
PIP_FIND_LINKS=/tmp/porchlight-image/wheels PIP_NO_CACHE_DIR=1 \
    /tmp/porchlight-image/assemble-root --release "${PORCHLIGHT_RELEASE}" \
    --tuf-root /tmp/porchlight-image/tuf-root.json \
    --requirement "porchlight[kiosk]==${PORCHLIGHT_RELEASE}" /
CHROOT

# pi-gen's first user exists for service on the bench only: no password login on a kiosk.
if [ -n "${FIRST_USER_NAME:-}" ]; then
    on_chroot <<CHROOT
passwd --lock "${FIRST_USER_NAME}"
CHROOT
fi

rm -rf "${ROOTFS_DIR}/tmp/porchlight-image"
