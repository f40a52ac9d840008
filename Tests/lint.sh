#!/usr/bin/env bash
# Checks the Swift sources against the project's swift-format configuration (.swift-format),
# with the swift-format of the Swift toolchain (`swift format`). Generated code is left out.
#   Tests/lint.sh          # exits non-zero and lists the places when a file is not formatted
#   Tests/lint.sh --fix    # formats the files in place
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find Sources Tests Benchmarks -name '*.swift' ! -path '*/Generated/*' | sort)
if [ "${1:-}" = "--fix" ]; then
  swift format format --in-place --configuration .swift-format "${files[@]}"
  exit 0
fi
swift format lint --strict --configuration .swift-format "${files[@]}"
echo "lint: ${#files[@]} Swift files follow .swift-format"
