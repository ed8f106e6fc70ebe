#!/bin/bash
# overlayroot works from the initramfs: rebuild it for every installed kernel (Pi 4 and Pi 5).
set -eu
update-initramfs -u -k all
