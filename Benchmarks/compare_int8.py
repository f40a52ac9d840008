#!/usr/bin/env python3
"""INT8 speed, side by side in one run: our INT8 vs our FP32 vs onnxruntime's INT8 of the same
model (and onnxruntime FP32), interleaved rounds, 1 and 2 threads, batch 1.

  Benchmarks/compare_int8.py [--models det,rec] [--threads 1,2] [--rounds 3] [--seconds 2]
  Benchmarks/compare_int8.py --models resnet50,mobilenet_v2     # paddle2onnx exports of the seed's CNNs

Models: det, rec, cls (PP-OCR), or a paddle.vision.models name (resnet50, resnet101,
mobilenet_v1, mobilenet_v2, vgg16, vgg19) exported by paddle2onnx (Models/paddle_export.py zoo),
calibrated on its 8 calibration samples.

- ours INT8: `dnnl-quant quantize MODEL --calibration DIR` (default settings) on the disjoint
  calibration set Benchmarks/main_job.py renders (seed 1: 8 pages for det, 32 words for rec).
- onnxruntime INT8: the recipe onnxruntime documents: the model converted to opset 13
  (onnx.version_converter), `quant_pre_process`, then `quantize_static` in QDQ format with u8
  activations, s8 per-channel weights, MinMax calibration on the same samples. The script checks
  that every Conv of the result reads its weights through a DequantizeLinear (else the baseline
  would run FP32 convolutions and the comparison would be broken).
Timing: ours via `dnnl-quant bench --json` (median latency), onnxruntime in process
(compare_onnxruntime.py's measurement: CPU provider, all optimizations, a fresh session per
measurement). The table gives medians over rounds and the ratios; the last line is JSON.
Models and data are cached in $DNNL_QUANT_CACHE (default ~/.cache/swift-dnnl-quantization).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare_onnxruntime as co  # noqa: E402  (measure_ours, measure_ort, load_feed, ...)
sys.path.insert(0, os.path.join(HERE, "seed-bench"))
import peers  # noqa: E402  (ort_int8: onnxruntime's INT8 recipe, shared with seed-bench)

CACHE = os.environ.get("DNNL_QUANT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "swift-dnnl-quantization"))
MODELS = {"det": ("ppocr_v4_det", "pages", "pages", 8), "rec": ("ppocr_v4_rec", "words_v4", "words", 32),
          "cls": ("ppocr_cls", "lines", "lines", 32)}


def calibration_dir(gen, set_name, k):
    out = os.path.join(CACHE, "mainjob", f"calib{k}")
    if not os.path.exists(os.path.join(out, set_name, "manifest.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "Models", "make_data.py"), gen, "--count", str(k),
                        "--seed", "1", "--out", out], check=True, capture_output=True)
    return os.path.join(out, set_name)


def zoo_model(name):
    """The paddle2onnx export of paddle.vision.models NAME and its 8 calibration samples
    (made by Models/paddle_export.py zoo NAME when missing)."""
    base = os.path.join(CACHE, "paddle", "zoo", name)
    if not os.path.exists(base + ".onnx") or not os.path.isdir(base + ".calib"):
        subprocess.run([sys.executable, os.path.join(ROOT, "Models", "paddle_export.py"), "zoo", name], check=True)
    return base + ".onnx", base + ".calib"


def ort_int8(fp32, calib, out):
    """onnxruntime's static QDQ quantization of `fp32` (opset 13, pre-processed, u8/s8 per
    channel; Benchmarks/seed-bench/peers.py, which also checks every Conv reads DequantizeLinear
    weights) from the .npy samples in the folder `calib`. Returns the path and the Conv count."""
    import numpy as np
    import onnx
    try:
        peers.ort_int8(fp32, [np.load(f) for f in sorted(glob.glob(os.path.join(calib, "*.npy")))], out)
    except RuntimeError as e:
        co.fail(str(e))
    return out, sum(n.op_type == "Conv" for n in onnx.load(out).graph.node)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="det,rec")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    binary = os.path.join(ROOT, ".build", "release", "dnnl-quant")
    co.ensure_binary(binary, False)
    threads = [int(t) for t in a.threads.split(",")]
    results, setup = {}, {}
    tmp = tempfile.mkdtemp(prefix="compare_int8_")
    os.makedirs(os.path.join(CACHE, "mainjob"), exist_ok=True)
    for name in a.models.split(","):
        if name in MODELS:
            entry, set_name, gen, k = MODELS[name]
            fp32 = co.model_path(entry)
            calib = calibration_dir(gen, set_name, k)
        else:  # the seed's CNNs as paddle2onnx exports them (Models/paddle_export.py zoo NAME)
            fp32, calib = zoo_model(name)
        ours8 = os.path.join(CACHE, "mainjob", f"{name}_int8_default.onnx")
        # The zoo's seeded random weights make output SQNR meaningless (onnxruntime's INT8 of them
        # is ~0 dB too): only speed is compared there, so quantize's SQNR floor is lifted.
        floor = [] if name in MODELS else ["--min-output-sqnr=-200"]
        subprocess.run([binary, "quantize", fp32, "--calibration", calib, "--output", ours8, *floor], check=True, capture_output=True)
        ort8, nconv = ort_int8(fp32, calib, os.path.join(CACHE, "mainjob", f"{name}_ort_int8.onnx"))
        sample = sorted(glob.glob(os.path.join(calib, "*.npy")))[0]
        feed, args = co.load_feed(sample, tmp)
        setup[name] = dict(fp32=fp32, ours_int8=ours8, ort_int8=ort8, ort_convs_with_weight_dq=nconv, input=sample)
        for th in threads:
            for r in range(a.rounds):
                order = ["ours_fp32", "ours_int8", "ort_int8", "ort_fp32"]
                if r % 2:
                    order.reverse()
                for which in order:
                    if which.startswith("ours"):
                        ms, _ = co.measure_ours(binary, fp32 if which == "ours_fp32" else ours8, args, th, a.seconds, {})
                    else:
                        ms, _ = co.measure_ort(fp32 if which == "ort_fp32" else ort8, feed, th, a.seconds)
                    results.setdefault((name, th, which), []).append(ms)
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
    print(f"load average: {os.getloadavg()}")
    print("| model | threads | ours FP32 ms | ours INT8 ms | ORT INT8 ms | ORT FP32 ms | ours INT8/FP32 | ours INT8 vs ORT INT8 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in a.models.split(","):
        for th in threads:
            f, q, o8, o32 = (med[(name, th, w)] for w in ["ours_fp32", "ours_int8", "ort_int8", "ort_fp32"])
            print(f"| {name} | {th} | {f:.2f} | {q:.2f} | {o8:.2f} | {o32:.2f} | {f / q:.2f}x | {o8 / q:.2f}x |")
    print(json.dumps({"setup": setup, "median_ms": {f"{k[0]}@{k[1]}:{k[2]}": v for k, v in med.items()}}))


if __name__ == "__main__":
    main()
