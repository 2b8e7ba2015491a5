#!/usr/bin/env bash
# Build the local base image `ic-base:bookworm` (Debian bookworm + Python 3.11)
# with debootstrap and `docker import`, for machines that cannot pull images
# from a registry. The Dockerfiles default to the public python:3.11-slim-bookworm;
# pass `--build-arg BASE_IMAGE=ic-base:bookworm` to build them on this one.
#
#   tools/docker/build_base_image.sh [--force]
#
# Environment: IC_BASE_IMAGE (tag, default ic-base:bookworm), DEBIAN_MIRROR
# (default http://deb.debian.org/debian), IC_EXTRA_CA_DIR (default
# /usr/local/share/ca-certificates: the certificate authorities this host adds
# to its trust store, e.g. a TLS-inspecting egress proxy; the image trusts them
# too, so pip and the model download work in builds on this machine).
# Needs root, debootstrap and Docker.
# Skips the work when the image already exists (unless --force).
set -euo pipefail

IMAGE="${IC_BASE_IMAGE:-ic-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
EXTRA_CA_DIR="${IC_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
# What the services' wheels need at run time: the interpreter, venv (with
# ensurepip) to build /opt/venv, CA certificates for the model download.
# onnxruntime, numpy and opencv-python-headless bundle their other libraries.
PACKAGES=python3,python3-venv,ca-certificates

if [[ "${1:-}" != "--force" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE exists (use --force to rebuild)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
[[ "$(id -u)" == 0 ]] || { echo "debootstrap needs root" >&2; exit 1; }

ROOTFS="$(mktemp -d /tmp/ic-base-rootfs.XXXXXX)"
cleanup() { rm -rf --one-file-system "$ROOTFS"; }
trap cleanup EXIT

echo "debootstrap $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
  || { tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"

# Same shape as the official Debian images: security updates as an apt source,
# no package caches or docs, no apt recommends.
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$ROOTFS/etc/apt/apt.conf.d/90ic-no-recommends"
# A local image for a local machine: trust what this host trusts. pip (23.0 in
# bookworm's ensurepip) reads its own CA bundle unless PIP_CERT says otherwise.
if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
  cp "$EXTRA_CA_DIR"/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
  chroot "$ROOTFS" update-ca-certificates >/dev/null
fi
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*

echo "docker import -> $IMAGE"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  --message "debootstrap $SUITE minbase + $PACKAGES" \
  - "$IMAGE"
docker image ls "$IMAGE"
