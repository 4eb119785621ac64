#!/bin/sh
# `docker build` with BuildKit (the CA secret needs it), whichever client can: `docker buildx` where the
# client has it, else a client with BuildKit built in (Debian's docker.io 20.10, with DOCKER_BUILDKIT=1).
# A 23+ client without the buildx plugin (e.g. a static one first on PATH) cannot, so it is skipped.
#   deploy/images/docker-build.sh [docker build arguments...]     (make image, make pg-image)
set -eu
for client in ${DOCKER:-$(which -a docker)}; do
  if "$client" buildx version >/dev/null 2>&1; then exec "$client" buildx build --load "$@"; fi
  case "$("$client" --version)" in
    "Docker version "1[89].* | "Docker version "2[0-2].*) DOCKER_BUILDKIT=1 exec "$client" build "$@" ;;
  esac
done
echo "no docker client here builds with BuildKit: install the buildx plugin, or Debian's docker.io" >&2
exit 1
