#!/usr/bin/env python3
"""The main job on a real model: fetch it, make calibration and labelled evaluation sets,
quantize it with `dnnl-quant quantize`, and print FP32 vs INT8 accuracy and throughput, measured
side by side in one run (the seed benchmark's table).

  Benchmarks/main_job.py [--model rec|det|cls] [--calib K] [--eval N] [--method mse]
                         [--threads 1,2] [--rounds R] [--seconds S]

- rec: PP-OCRv4 recogniser, word accuracy / CER on rendered words (default 300 eval, 32 calib)
- det: PP-OCRv4 detector, word-box recall on rendered 640x640 pages (default 30 eval, 8 calib)
  and text-mask IoU of INT8 vs FP32
- cls: PP-OCR direction classifier, accuracy on rendered lines, half rotated 180 degrees

Calibration and evaluation samples are disjoint (different seeds). Data and models are cached
in $DNNL_QUANT_CACHE (default ~/.cache/swift-dnnl-quantization)/mainjob; nothing is written
into the repository. Speed is the median of interleaved `dnnl-quant bench --json` rounds on the
release build (the machine may be shared: ratios, not absolute times, are the result).
Exit status 1 with a message when a step fails.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("DNNL_QUANT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "swift-dnnl-quantization"))
BIN = os.path.join(ROOT, ".build", "release", "dnnl-quant")
TASKS = {
    "rec": dict(entry="ppocr_v4_rec", set="words_v4", gen="words", task="rec", eval=300, calib=32,
                metric="word_acc", label="word accuracy"),
    "det": dict(entry="ppocr_v4_det", set="pages", gen="pages", task="det", eval=30, calib=8,
                metric="recall", label="box recall"),
    "cls": dict(entry="ppocr_cls", set="lines", gen="lines", task="cls", eval=300, calib=32,
                metric="accuracy", label="accuracy"),
}


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"main_job: {' '.join(cmd[:3])} ... failed:\n{r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def last_json(text):
    return json.loads([l for l in text.strip().splitlines() if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(TASKS), default="rec")
    ap.add_argument("--eval", type=int)
    ap.add_argument("--calib", type=int)
    ap.add_argument("--method", default="mse")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    t = TASKS[a.model]
    n_eval, n_calib = a.eval or t["eval"], a.calib or t["calib"]
    work = os.path.join(CACHE, "mainjob")
    os.makedirs(work, exist_ok=True)

    print(f"[1/5] installing what is missing, building the release binary, fetching {t['entry']}", flush=True)
    run(["bash", os.path.join(ROOT, "Models", "setup.sh")])
    run(["swift", "build", "-c", "release", "--product", "dnnl-quant"], cwd=ROOT)
    fp32 = run([sys.executable, os.path.join(ROOT, "Models", "fetch.py"), "--print-path", t["entry"]]).strip()

    print(f"[2/5] rendering {n_eval} evaluation and {n_calib} calibration samples ({t['set']})", flush=True)
    eval_dir, calib_dir = os.path.join(work, f"eval{n_eval}"), os.path.join(work, f"calib{n_calib}")
    for out, n, seed in [(eval_dir, n_eval, 0), (calib_dir, n_calib, 1)]:
        if not os.path.exists(os.path.join(out, t["set"], "manifest.json")):
            run([sys.executable, os.path.join(ROOT, "Models", "make_data.py"), t["gen"], "--count", str(n),
                 "--seed", str(seed), "--out", out])

    print(f"[3/5] quantizing with {a.method} calibration", flush=True)
    int8 = os.path.join(work, f"{a.model}_int8_{a.method}.onnx")
    report = os.path.join(work, f"{a.model}_int8_{a.method}.report.json")
    run([BIN, "quantize", fp32, "--calibration", os.path.join(calib_dir, t["set"]), "--output", int8,
         "--method", a.method, "--report", report])
    rep = json.load(open(report))
    n_int8 = sum(1 for n in rep["nodes"] if n["precision"] == "int8")

    print("[4/5] evaluating FP32 and INT8 on our engine", flush=True)
    keep = os.path.join(work, f"{a.model}_outputs")
    ev = [sys.executable, os.path.join(ROOT, "Models", "evaluate.py"), t["task"]]
    base = ["--set", t["set"], "--data", eval_dir, "--binary", BIN]
    r32 = last_json(run(ev + [fp32] + base + ["--keep", os.path.join(keep, "fp32"), "--compare-to", "none"]))
    ref = os.path.join(keep, "fp32", f"{t['set']}_ours")
    r8 = last_json(run(ev + [int8] + base + ["--keep", os.path.join(keep, "int8"), "--compare-to", ref]))

    print("[5/5] measuring throughput, FP32 and INT8 interleaved", flush=True)
    sample = sorted(f for f in os.listdir(os.path.join(eval_dir, t["set"])) if f.endswith(".npy"))[0]
    inp = f"x={os.path.join(eval_dir, t['set'], sample)}"
    speed = {}
    for th in [int(x) for x in a.threads.split(",")]:
        for _ in range(a.rounds):
            for name, m in [("fp32", fp32), ("int8", int8)]:
                j = last_json(run([BIN, "bench", m, "--input", inp, "--threads", str(th), "--seconds", str(a.seconds), "--json"]))
                speed.setdefault((th, name), []).append(j["throughput"])
    med = {k: sorted(v)[len(v) // 2] for k, v in speed.items()}

    def metric(r):
        return r["engines"]["ours"][t["metric"]]

    acc32, acc8 = metric(r32), metric(r8)
    print()
    print(f"{a.model} ({os.path.basename(fp32)}), {n_eval} evaluation samples, {n_calib} calibration samples, "
          f"{a.method}; {n_int8} nodes INT8")
    print(f"| model | threads | FP32 samples/s | INT8 samples/s | INT8/FP32 | FP32 {t['label']} | INT8 {t['label']} | diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for th in sorted({k[0] for k in med}):
        f, q = med[(th, "fp32")], med[(th, "int8")]
        print(f"| {a.model} | {th} | {f:.2f} | {q:.2f} | {q / f:.2f} | {acc32:.4f} | {acc8:.4f} | {acc8 - acc32:+.4f} |")
    agree = r8["engines"]["ours"]
    extra = {k: v for k, v in agree.items() if k in ("argmax_agreement", "text_agreement", "iou", "mask_iou", "max_abs_diff", "cer")}
    print(f"INT8 vs FP32 on the same inputs: {json.dumps(extra)}")
    print(json.dumps({"model": a.model, "eval": n_eval, "calib": n_calib, "method": a.method,
                      "fp32": r32, "int8": r8, "throughput": {f"{k[1]}@{k[0]}": v for k, v in med.items()}}))


if __name__ == "__main__":
    main()
