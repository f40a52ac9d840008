#!/usr/bin/env bash
# The project's test command (README): installs what the tests need when it is missing, then
# runs every XCTest suite. Exits non-zero when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# oneDNN 2.6 from Debian (headers + libdnnl.so).
if [ ! -f /usr/include/oneapi/dnnl/dnnl.h ]; then
  echo "installing libdnnl-dev (oneDNN 2.6) ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libdnnl-dev >/dev/null
fi

swift build --build-tests
swift test --skip-build "$@"
