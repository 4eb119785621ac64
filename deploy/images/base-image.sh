#!/bin/sh
# A Debian bookworm base image for when no image registry is reachable: debootstrap (minbase) with
# Python 3.11, venv and CA certificates, imported into the local engine as TAG.
#   deploy/images/base-image.sh risk-base:bookworm      (make base-image)
# The mirror is the host's own Debian mirror, read from its apt sources at run time (DEBIAN_MIRROR overrides).
set -eu
tag=${1:?usage: base-image.sh TAG}
docker=${DOCKER:-docker}
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)}
mirror=${mirror:-$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n 1)}
test -n "$mirror" || { echo "no Debian mirror in the host's apt sources: set DEBIAN_MIRROR" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# what a container never needs: downloaded packages, package lists, logs
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
tar --numeric-owner -C "$root" -c . | "$docker" import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag"
