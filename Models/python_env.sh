# The one Python environment of every script in this repository: a virtual environment under
# the cache folder, $DNNL_QUANT_CACHE/venv (default ~/.cache/swift-dnnl-quantization/venv),
# holding Models/requirements.txt (and, on request, Models/requirements-paddle.txt). Nothing is
# ever pip-installed into the system python.
#
#   source Models/python_env.sh            # exports PYTHON (the venv's python), creating the
#                                          # venv and installing what is missing first
#   python_env_ensure paddle               # after sourcing: also paddlepaddle + paddle2onnx
#   bash Models/python_env.sh [--paddle]   # the same, then prints the path of PYTHON
#
# PYTHON is the one setting: every shell script runs "$PYTHON", the Swift tests read it, and
# the Python entry points re-execute themselves with it (Models/use_venv.py). A PYTHON set
# beforehand is kept; packages are installed into it only when it is a virtual environment.
#
# A requirements file is installed when its import check fails or when it changed since it was
# last installed into the venv (a sha256 stamp in the venv). Creation and installs hold a lock
# ($DNNL_QUANT_CACHE/.venv.lock), so concurrent scripts do not install twice.
# Sourcing does not change the caller's shell options; functions return non-zero on failure.

_python_env_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DNNL_QUANT_CACHE="${DNNL_QUANT_CACHE:-$HOME/.cache/swift-dnnl-quantization}"
export PYTHON="${PYTHON:-$DNNL_QUANT_CACHE/venv/bin/python}"

# python_env_ensure [base|paddle]: the venv exists and holds the requirements of that set (paddle
# includes base).
python_env_ensure() {
  local set="${1:-base}"
  _python_env_ok base || _python_env_locked base || return 1
  if [ "$set" = paddle ]; then
    _python_env_ok paddle || _python_env_locked paddle || return 1
  fi
}

_python_env_req() {  # SET -> requirements file
  case "$1" in
    base) echo "$_python_env_root/Models/requirements.txt" ;;
    paddle) echo "$_python_env_root/Models/requirements-paddle.txt" ;;
  esac
}

_python_env_imports() {  # SET -> import check
  case "$1" in
    base) echo "import numpy, PIL, onnx, onnxruntime" ;;
    paddle) echo "import paddle, paddle2onnx, polygraphy, onnx_graphsurgeon" ;;
  esac
}

_python_env_stamp() { echo "$(dirname "$(dirname "$PYTHON")")/.installed-$1.sha256"; }

# True when PYTHON runs, the set's imports work and its stamp matches its requirements file.
_python_env_ok() {
  [ -x "$PYTHON" ] || return 1
  local want; want=$(sha256sum "$(_python_env_req "$1")" | cut -d' ' -f1)
  # A PYTHON that is no venv of ours has no stamp: only its imports count.
  if [ "$PYTHON" = "$DNNL_QUANT_CACHE/venv/bin/python" ]; then
    [ "$(cat "$(_python_env_stamp "$1")" 2>/dev/null)" = "$want" ] || return 1
  fi
  "$PYTHON" -c "$(_python_env_imports "$1")" >/dev/null 2>&1
}

_python_env_locked() {  # SET: create/install under the lock (in a subshell: the lock's fd)
  mkdir -p "$DNNL_QUANT_CACHE" || return 1
  (
    if command -v flock >/dev/null; then flock 8 || exit 1; fi
    _python_env_ok "$1" && exit 0   # another process did it while we waited
    _python_env_install "$1"
  ) 8>"$DNNL_QUANT_CACHE/.venv.lock"
}

# Every step checks its status itself: callers may run this where `set -e` is ignored
# (`if ! source ...`, `cmd || ...`).
_python_env_install() {  # SET
  local venv; venv="$(dirname "$(dirname "$PYTHON")")"
  if [ ! -x "$PYTHON" ]; then
    if [ "$PYTHON" != "$DNNL_QUANT_CACHE/venv/bin/python" ]; then
      echo "python_env: PYTHON=$PYTHON does not exist (unset PYTHON to use $DNNL_QUANT_CACHE/venv)" >&2
      return 1
    fi
    echo "python_env: creating $venv ..." >&2
    rm -rf "$venv"
    if ! python3 -m venv "$venv"; then
      rm -rf "$venv"
      # Debian's own python3 needs python3-venv for ensurepip.
      if [ "$(command -v python3)" != /usr/bin/python3 ]; then
        echo "python_env: python3 -m venv $venv failed" >&2
        return 1
      fi
      local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
      $sudo apt-get update -qq || return 1
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null || return 1
      python3 -m venv "$venv" || { rm -rf "$venv"; return 1; }
    fi
  fi
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    echo "python_env: PYTHON=$PYTHON lacks packages and is no virtual environment; nothing is" \
         "installed into a system python (unset PYTHON to use $DNNL_QUANT_CACHE/venv)" >&2
    return 1
  fi
  local req; req="$(_python_env_req "$1")"
  local stamp; stamp="$(_python_env_stamp "$1")"
  rm -f "$stamp"
  echo "python_env: installing $(basename "$req") into $venv ..." >&2
  local t0=$SECONDS
  local pip=("$PYTHON" -m pip install -q --disable-pip-version-check)
  # Lines marked "no-deps" are installed without their declared dependencies (see the file).
  "${pip[@]}" -r <(grep -v 'no-deps' "$req") || return 1
  local nodeps; nodeps=$(grep 'no-deps' "$req" | grep -v '^ *#' | sed 's/#.*//' | xargs)
  if [ -n "$nodeps" ]; then
    # shellcheck disable=SC2086
    "${pip[@]}" --no-deps $nodeps || return 1
  fi
  "$PYTHON" -W ignore::UserWarning -c "$(_python_env_imports "$1")" || return 1
  sha256sum "$req" | cut -d' ' -f1 > "$stamp.tmp" && mv "$stamp.tmp" "$stamp" || return 1
  echo "python_env: installed $(basename "$req") ($((SECONDS - t0)) s)" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Executed (Models/use_venv.py does this): ensure, then print PYTHON.
  set -euo pipefail
  python_env_ensure "$([ "${1:-}" = --paddle ] && echo paddle || echo base)" >&2
  echo "$PYTHON"
else
  python_env_ensure base
fi
