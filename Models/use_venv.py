"""Runs the calling script in the project's virtual environment (Models/python_env.sh).

Every entry point (Models/*.py, Benchmarks/*.py) starts with, before any third-party import:

    sys.path.insert(0, "<repo>/Models")
    import use_venv
    if __name__ == "__main__":
        use_venv.ensure()            # or use_venv.ensure("paddle")

ensure() returns at once when this interpreter is $PYTHON (default
$DNNL_QUANT_CACHE/venv/bin/python) and its packages are in place. Otherwise it creates the venv
and installs what is missing through Models/python_env.sh, then re-executes the script with
$PYTHON (same arguments and interpreter options). Standard library only.
"""
import hashlib
import importlib
import importlib.util
import os
import subprocess
import sys

MODELS = os.path.dirname(os.path.abspath(__file__))
SHELL = os.path.join(MODELS, "python_env.sh")
CACHE = os.environ.get("DNNL_QUANT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                           "swift-dnnl-quantization")
VENV = os.path.join(CACHE, "venv")
DEFAULT = os.path.join(VENV, "bin", "python")
# As python_env.sh: each set's requirements file and import check.
SETS = {"base": ("requirements.txt", ["numpy", "PIL", "onnx", "onnxruntime"]),
        "paddle": ("requirements-paddle.txt", ["paddle", "paddle2onnx", "polygraphy", "onnx_graphsurgeon"])}
_GUARD = "DNNL_QUANT_REEXEC"


def _prefix(python):
    if python == DEFAULT:
        return VENV
    try:
        r = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _ready(python, name):
    req, modules = SETS[name]
    if any(importlib.util.find_spec(m) is None for m in modules):
        return False
    if python != DEFAULT:
        return True  # a PYTHON of the user's: no stamp, its imports count
    try:
        with open(os.path.join(VENV, f".installed-{name}.sha256")) as f:
            stamp = f.read().strip()
        with open(os.path.join(MODELS, req), "rb") as f:
            return stamp == hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return False


def _shell(sets):
    """python_env.sh creates the venv / installs; returns the PYTHON it settled on."""
    args = ["bash", SHELL] + (["--paddle"] if "paddle" in sets else [])
    r = subprocess.run(args, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"{os.path.basename(sys.argv[0])}: Models/python_env.sh failed (exit {r.returncode})")
    return r.stdout.strip().splitlines()[-1]


def ensure(*extra):
    sets = ["base"] + list(extra)
    python = os.environ.get("PYTHON") or DEFAULT
    os.environ["DNNL_QUANT_CACHE"] = CACHE
    if os.path.realpath(sys.prefix) != os.path.realpath(_prefix(python) or "/nonexistent"):
        if os.environ.get(_GUARD) == python:
            sys.exit(f"{os.path.basename(sys.argv[0])}: re-executed with PYTHON={python} but runs in "
                     f"{sys.executable}")
        if not os.access(python, os.X_OK):
            python = _shell(sets)
        argv = list(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
        script = os.path.abspath(sys.argv[0])
        # orig_argv is [interpreter, options..., script, args...]: keep the options and arguments.
        i = len(argv) - len(sys.argv)
        argv = [python] + argv[1:i] + [script] + sys.argv[1:]
        env = dict(os.environ, PYTHON=python, **{_GUARD: python})
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(python, argv, env)
    os.environ["PYTHON"] = python
    if not all(_ready(python, s) for s in sets):
        _shell(sets)
        importlib.invalidate_caches()
