#!/usr/bin/env bash
# Installs what the Models/ and Benchmarks/ scripts need, when it is missing: Debian's oneDNN,
# fonts and word list (rendered OCR data), and the project's venv with the Python packages of
# Models/requirements.txt (Models/python_env.sh; nothing is installed into the system python).
# Idempotent; uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
for p in libdnnl-dev fonts-dejavu-core fonts-liberation2 wamerican; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} ..."
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The venv ($DNNL_QUANT_CACHE/venv) with Models/requirements.txt; exports PYTHON.
source Models/python_env.sh
