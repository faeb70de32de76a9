#!/bin/sh
# Entrypoint of the locally made LocalStack image (docker/localstack/Containerfile): runs the boot.d
# init hooks, then LocalStack itself, which runs the start.d, ready.d and shutdown.d hooks.
set -eu
if [ -n "$(ls -A /etc/localstack/init/boot.d 2>/dev/null)" ]; then
  python -m localstack.runtime.init BOOT
fi
exec python -m localstack.runtime.main "$@"
