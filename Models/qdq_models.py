#!/usr/bin/env python3
"""QDQ ONNX files of the real PP-OCR models made by other tools, for QDQInteropTests (issue 9,
"QAT route": QDQ models from other quantizers run on our INT8 engine).

  Models/qdq_models.py [--models ppocr_cls,ppocr_v4_rec,ppocr_v4_det] [--variants ort_u8s8,ort_s8s8,nncf]
                       [--samples 16] [--out DIR] [--force] [--list]

For each model (Models/models.json entry, fetched by Models/fetch.py) and variant, calibrated on
the first --samples (at most 16; det has 8) samples of the PTQ calibration set
($DNNL_QUANT_CACHE/ptqdata/calib/<set>: lines for ppocr_cls, words_v4 for ppocr_v4_rec, pages for
ppocr_v4_det; Tests/prepare_fixtures.sh makes them), one file DIR/<model>_<variant>.onnx
(DIR default $DNNL_QUANT_CACHE/qdq):

- ort_u8s8: onnxruntime's documented static recipe, the one Benchmarks/seed-bench/peers.py
  (`ort_int8`, imported, not copied) uses: opset 13 (onnx.version_converter),
  `quant_pre_process`, `quantize_static` with QuantFormat.QDQ, QUInt8 activations, QInt8
  per-channel weights, MinMax calibration; every Conv reads its weight through a
  DequantizeLinear (peers checks).
- ort_s8s8: the same with QInt8 activations (peers.ort_int8 with `quantize_static`'s
  activation_type replaced by QInt8 for the call).
- nncf: NNCF's ONNX backend (`nncf.quantize` on the onnx ModelProto, default preset,
  subset_size = the number of samples) on the FP32 model converted to opset 13, as a user calls
  it: no onnxruntime pre-processing, so BatchNormalization stays unfused (NNCF puts the
  activation QuantizeLinear after Conv -> BatchNormalization -> activation) and the weights
  stay float Constants behind a QuantizeLinear -> DequantizeLinear pair. (On a model whose
  Constants were made initializers, nncf 3.4.0's eliminate_nop_cast pass fails with
  "AttributeError: type" at a Cast that reads an initializer.) When NNCF fails for a model, its
  error is recorded in qdq.json and that variant is skipped for that model.

DIR/qdq.json: {"versions": {...}, "files": {"<model>_<variant>": {model, variant, path, sha256,
key, calibration: [files], seconds, ops: {op type: count}}}, "errors": {"<model>_<variant>":
{key, error}}}. The key hashes this script, peers.py, the FP32 model's sha256, the calibration
files (names and contents) and the package versions; an entry whose key and file sha256 match is
not redone (a recorded error with the same key is not retried) unless --force. Prints one line
per file; the last line is the JSON of qdq.json.
"""
import argparse
import contextlib
import glob
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np  # noqa: E402

import fetch  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "seed-bench"))
import peers  # noqa: E402  (ort_int8: onnxruntime's INT8 recipe, shared with seed-bench and compare_int8)

MODELS = {"ppocr_cls": "lines", "ppocr_v4_rec": "words_v4", "ppocr_v4_det": "pages"}
VARIANTS = ["ort_u8s8", "ort_s8s8", "nncf"]
MAX_SAMPLES = 16
PEERS_REQUIREMENTS = os.path.join(ROOT, "Benchmarks", "seed-bench", "requirements-peers.txt")


def sha256_bytes(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def file_sha(path):
    return fetch.sha256(path)


def versions():
    """Installed versions (package metadata: importing nncf takes seconds)."""
    from importlib import metadata
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for dist in ("onnx", "onnxruntime", "nncf", "openvino"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def ensure_nncf():
    """pip-installs Benchmarks/seed-bench/requirements-peers.txt into this venv when nncf or
    openvino is missing (peers.install_missing, as peers.py serve does); returns an error string
    or None."""
    import importlib.util
    if all(importlib.util.find_spec(m) for m in ("nncf", "openvino")):
        return None
    peers.install_missing()
    importlib.invalidate_caches()
    try:
        import nncf  # noqa: F401
        return None
    except Exception as e:  # noqa: BLE001  (an import that fails for any reason: recorded)
        return f"nncf not importable after installing {os.path.relpath(PEERS_REQUIREMENTS, ROOT)}: {type(e).__name__}: {e}"


def calibration(set_name, n):
    d = os.path.join(fetch.CACHE, "ptqdata", "calib", set_name)
    files = sorted(glob.glob(os.path.join(d, "*.npy")))[:n]
    if not files:
        sys.exit(f"qdq_models: no calibration samples in {d}: run Tests/prepare_fixtures.sh")
    return files


def model_path(name):
    with open(os.path.join(HERE, "models.json")) as f:
        entries = {e["name"]: e for e in json.load(f)["entries"]}
    return fetch.fetch(entries[name]), entries[name]["sha256"]


def op_counts(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    counts = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- the variants

def ort_variant(fp32, samples, out, activation):
    """peers.ort_int8 (opset 13, quant_pre_process, quantize_static QDQ, s8 per-channel weights)
    with u8 or s8 activations."""
    import onnxruntime.quantization as oq
    if activation == "u8":
        peers.ort_int8(fp32, samples, out)
        return
    original = oq.quantize_static

    def s8_activations(*args, **kwargs):
        kwargs["activation_type"] = oq.QuantType.QInt8
        return original(*args, **kwargs)

    oq.quantize_static = s8_activations  # peers.ort_int8 imports it from the module at call time
    try:
        peers.ort_int8(fp32, samples, out)
    finally:
        oq.quantize_static = original


def nncf_variant(fp32, samples, out):
    import logging

    import onnx
    from onnx import version_converter
    err = ensure_nncf()
    if err:
        raise RuntimeError(err)
    import nncf
    nncf.set_log_level(logging.WARNING)  # not one INFO line per node without a static shape
    m = version_converter.convert_version(onnx.load(fp32), 13)
    inits = {i.name for i in m.graph.initializer}
    name = [i.name for i in m.graph.input if i.name not in inits][0]
    # NNCF prints progress bars on stdout: keep our stdout for our own lines.
    with contextlib.redirect_stdout(io.StringIO()):
        q = nncf.quantize(m, nncf.Dataset(samples, lambda x: {name: x}), subset_size=len(samples))
    if not any(n.op_type == "QuantizeLinear" for n in q.graph.node):
        raise RuntimeError("nncf.quantize returned a model without QuantizeLinear nodes")
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".onnx")
    os.close(fd)
    onnx.save(q, tmp)
    os.replace(tmp, out)


def make(model, variant, fp32, files, out):
    samples = [np.load(f) for f in files]
    if variant == "ort_u8s8":
        ort_variant(fp32, samples, out, "u8")
    elif variant == "ort_s8s8":
        ort_variant(fp32, samples, out, "s8")
    elif variant == "nncf":
        nncf_variant(fp32, samples, out)
    else:
        raise ValueError(variant)


# --------------------------------------------------------------------------- main

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--samples", type=int, default=MAX_SAMPLES, help="calibration samples per model (at most 16)")
    p.add_argument("--out", default=os.path.join(fetch.CACHE, "qdq"))
    p.add_argument("--force", action="store_true", help="redo every file")
    p.add_argument("--list", action="store_true", help="print qdq.json and exit")
    a = p.parse_args(argv)
    models = [m for m in a.models.split(",") if m]
    variants = [v for v in a.variants.split(",") if v]
    for m in models:
        if m not in MODELS:
            p.error(f"unknown model {m} (one of {', '.join(MODELS)})")
    for v in variants:
        if v not in VARIANTS:
            p.error(f"unknown variant {v} (one of {', '.join(VARIANTS)})")
    if not 1 <= a.samples <= MAX_SAMPLES:
        p.error(f"--samples must be 1 to {MAX_SAMPLES}")
    os.makedirs(a.out, exist_ok=True)
    index_path = os.path.join(a.out, "qdq.json")
    index = {"versions": {}, "files": {}, "errors": {}}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index.update(json.load(f))
    if a.list:
        print(json.dumps(index, indent=1))
        return
    if "nncf" in variants:
        ensure_nncf()  # before versions(): they go into the keys
    vers = versions()
    index["versions"] = vers
    with open(os.path.abspath(__file__), "rb") as f:
        me = f.read()
    with open(os.path.join(ROOT, "Benchmarks", "seed-bench", "peers.py"), "rb") as f:
        peers_src = f.read()
    status = 0
    for model in models:
        fp32, fp32_sha = model_path(model)
        files = calibration(MODELS[model], a.samples)
        calib_key = sha256_bytes(*[os.path.basename(f) + ":" + file_sha(f) for f in files])
        for variant in variants:
            name = f"{model}_{variant}"
            out = os.path.join(a.out, name + ".onnx")
            tool = {k: vers.get(k) for k in ("onnx", "onnxruntime", "numpy")}
            if variant == "nncf":
                tool.update({k: vers.get(k) for k in ("nncf", "openvino")})
            key = sha256_bytes(me, peers_src, fp32_sha, calib_key, variant, json.dumps(tool, sort_keys=True))
            done = index["files"].get(name)
            if (not a.force and done and done.get("key") == key and os.path.exists(out)
                    and file_sha(out) == done.get("sha256")):
                print(f"{name}: up to date ({out})")
                continue
            failed = index["errors"].get(name)
            if not a.force and failed and failed.get("key") == key:
                print(f"{name}: skipped (failed before with the same inputs: {failed['error'].splitlines()[0][:300]})")
                continue
            index["files"].pop(name, None)
            index["errors"].pop(name, None)
            if os.path.exists(out):
                os.remove(out)
            t0 = time.perf_counter()
            try:
                make(model, variant, fp32, files, out)
            except Exception as e:  # noqa: BLE001  (a tool that fails on a model is recorded, not fatal)
                msg = f"{type(e).__name__}: {e}".strip()
                detail = traceback.format_exc().strip().splitlines()[-12:]
                index["errors"][name] = {"key": key, "error": msg, "traceback": detail}
                print(f"{name}: FAILED ({msg.splitlines()[0][:300]}); skipped")
                if variant != "nncf":
                    status = 1  # onnxruntime's recipe must work
                write_index(index_path, index)
                continue
            seconds = time.perf_counter() - t0
            entry = {"model": model, "variant": variant, "path": out, "sha256": file_sha(out), "key": key,
                     "fp32": fp32, "calibration": [os.path.relpath(f, fetch.CACHE) for f in files],
                     "seconds": round(seconds, 2), "ops": op_counts(out)}
            index["files"][name] = entry
            write_index(index_path, index)
            ops = entry["ops"]
            print(f"{name}: wrote {out} in {seconds:.1f} s ({ops.get('QuantizeLinear', 0)} QuantizeLinear, "
                  f"{ops.get('DequantizeLinear', 0)} DequantizeLinear)")
    write_index(index_path, index)
    print(json.dumps(index))
    sys.exit(status)


def write_index(path, index):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
