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

# valgrind for MemoryTests (memcheck over run/quantize of a small model).
if ! command -v valgrind >/dev/null 2>&1; then
  echo "installing valgrind ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq valgrind >/dev/null
fi
# gdb (stacks of crashes and hangs) and prlimit (util-linux: memory limit per case) for the
# fuzzer (FuzzRegressionTests: Tests/fuzz/fuzz.py).
if ! command -v gdb >/dev/null 2>&1 || ! command -v prlimit >/dev/null 2>&1; then
  echo "installing gdb and util-linux (prlimit) ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gdb util-linux >/dev/null
fi

# The Python environment of every helper: the venv $DNNL_QUANT_CACHE/venv with
# Models/requirements.txt (Models/python_env.sh). It exports PYTHON, which the Swift tests run
# their Python helpers with (PTQAcceptanceTests).
if ! source Models/python_env.sh; then
  if [ "${DNNL_QUANT_REQUIRE_MODELS:-0}" = 1 ]; then
    echo "Models/python_env.sh failed (DNNL_QUANT_REQUIRE_MODELS=1)" >&2
    exit 1
  fi
  echo "warning: Models/python_env.sh failed; tests that need Python will skip or fail" >&2
fi
export PYTHON

# Real models, the small test set of RealModelTests and the PTQ acceptance sets of
# PTQAcceptanceTests (cached outside the repository; a no-op when done). Without them those
# tests skip, unless DNNL_QUANT_REQUIRE_MODELS=1 (CI) fails them.
if ! bash Tests/prepare_fixtures.sh; then
  if [ "${DNNL_QUANT_REQUIRE_MODELS:-0}" = 1 ]; then
    echo "Tests/prepare_fixtures.sh failed (DNNL_QUANT_REQUIRE_MODELS=1)" >&2
    exit 1
  fi
  echo "warning: Tests/prepare_fixtures.sh failed; RealModelTests and PTQAcceptanceTests will skip" >&2
fi

# The release CLI: PTQAcceptanceTests calibrate and evaluate with .build/release/dnnl-quant
# (calibration in a debug build is slow).
swift build -c release --product dnnl-quant
# The benchmark executable (SeedBenchSmokeTests runs it briefly on one zoo model with its peers).
swift build -c release --product seed-bench
swift build --build-tests
swift test --skip-build "$@"
