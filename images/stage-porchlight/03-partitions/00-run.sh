#!/bin/bash
# Move the app and data trees out of the root file system: images/build turns them into their
# own partitions (PORCHAPP at /opt/porchlight, PORCHDATA at /var/lib/porchlight). The root keeps
# the empty mount points.
set -eu

out="${STAGE_WORK_DIR}/partitions"
rm -rf "$out"
mkdir -p "$out"
for part in app:opt/porchlight data:var/lib/porchlight; do
    name=${part%%:*}
    path=${part#*:}
    mkdir -p "$out/$name"
    # cp -a keeps owners, modes and the relative `current` link; then empty the mount point.
    cp -a "${ROOTFS_DIR}/$path/." "$out/$name/"
    find "${ROOTFS_DIR}/$path" -mindepth 1 -delete
done
