#!/usr/bin/env python3
"""Accuracy of a model (FP32 or quantized ONNX) on the labelled Models/make_data.py sets, run by
our engine (`dnnl-quant run` on batched inputs) and/or onnxruntime; metrics from ocr_metrics.py.

  Models/evaluate.py cls [MODEL.onnx] [--set lines]
  Models/evaluate.py rec [MODEL.onnx] [--set words_v4|words_v2] [--chars v4|v2|MODEL.onnx|KEYS.txt]
  Models/evaluate.py det [MODEL.onnx] [--set pages|scans] [--threshold 0.3]
  Models/evaluate.py vad [MODEL.onnx] [--set speech]
  any task: [--engine ours|ort|both] [--limit N] [--chunk N] [--threads N]
            [--compare-to OUTDIR|none] [--keep DIR] [--binary PATH] [--data DIR] [--per-sample]

MODEL defaults to the FP32 model of the task from Models/models.json (rec: ppocr_v4_rec for
words_v4, ppocr_v2_rec for words_v2), fetched when missing. --set defaults to lines / words_v4
(words_v2 when the model's file name says v2) / pages / speech.

How our engine runs: the samples of the set (sorted; --limit N keeps the first N) are stacked
along dim 0 into one .npy per chunk of --chunk samples with the same shape (default 32 for cls
and rec, 4 for det pages; det scans and vad run one sample at a time: their shapes differ), run
with `dnnl-quant run MODEL --input NAME=chunk.npy --output-dir ... --threads N`, and each output
is split back along dim 0 into OUT/<sample>/<output>.npy, the layout ocr_metrics.py reads
(vad: one clip per run, its outputs kept whole). A batch our engine fails on is rerun one sample
at a time, with a warning quoting the error (an engine bug to report). onnxruntime (--engine ort|both) runs the same
chunks in process (CPU provider, all graph optimisations) into a second folder.

Printed: per engine, the task's metrics (ocr_metrics.py: cls accuracy; rec word accuracy,
case-insensitive word accuracy and CER; det box recall and text fraction; vad accuracy and the
max speech probability per clip), then the agreement of ours with onnxruntime (--engine both)
and of each engine with --compare-to (cls argmax agreement, rec decoded-text agreement, det
text-mask IoU, largest absolute output difference). --compare-to defaults to DATA/<set>_out
(Models/reference_outputs.py's onnxruntime FP32 outputs) when it holds every sample; `none`
turns it off. The last line is one JSON object with everything.

Outputs go to a temporary folder removed at the end, or to --keep DIR (DIR/<set>_ours,
DIR/<set>_ort). The binary (default .build/release/dnnl-quant) is built with `swift build -c
release --product dnnl-quant` when missing; a warning says when it is older than Sources/.

Exit status 1 with a message when the model, the data, a run or an output is missing or wrong.
Needs: numpy; onnxruntime for --engine ort|both; onnx for --chars v4 / MODEL.onnx.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repository when importing fetch.py
import fetch  # noqa: E402
import ocr_metrics  # noqa: E402  (decoding and metrics: one implementation for every script)

DEFAULT_BINARY = os.path.join(ROOT, ".build", "release", "dnnl-quant")
# task -> (default set, default models.json entry)
TASKS = {"cls": ("lines", "ppocr_cls"), "rec": ("words_v4", "ppocr_v4_rec"),
         "det": ("pages", "ppocr_v4_det"), "vad": ("speech", "silero_vad")}
SETS = {"cls": ["lines"], "rec": ["words_v4", "words_v2"], "det": ["pages", "scans"], "vad": ["speech"]}
DEFAULT_CHUNK = {"cls": 32, "rec": 32, "det": 4, "vad": 1}


def fail(msg):
    sys.exit(f"evaluate: {msg}")


def models_json():
    with open(os.path.join(HERE, "models.json")) as f:
        return {e["name"]: e for e in json.load(f)["entries"]}


def newest_source(folder):
    newest = 0.0
    for d, _, files in os.walk(folder):
        for f in files:
            if f.endswith(".swift"):
                newest = max(newest, os.path.getmtime(os.path.join(d, f)))
    return newest


def ensure_binary(path, build=False):
    """`path`, built with `swift build -c release --product dnnl-quant` when it is the default
    binary and missing (or `build`); warns when it is older than a file in Sources/."""
    if build or not os.path.exists(path):
        if os.path.abspath(path) != os.path.abspath(DEFAULT_BINARY):
            if not os.path.exists(path):
                fail(f"--binary {path} does not exist")
            return path
        print("building: swift build -c release --product dnnl-quant", file=sys.stderr)
        r = subprocess.run(["swift", "build", "-c", "release", "--product", "dnnl-quant"], cwd=ROOT)
        if r.returncode != 0 or not os.path.exists(path):
            fail("swift build -c release --product dnnl-quant failed")
    if os.path.getmtime(path) < newest_source(os.path.join(ROOT, "Sources")):
        print(f"warning: {path} is older than a file in Sources/ "
              "(swift build -c release --product dnnl-quant)", file=sys.stderr)
    return path


# ----------------------------------------------------------------------------- samples

def label_file(set_dir, task):
    """The set's labels (det: boxes.json; scans have none), or None."""
    p = os.path.join(set_dir, "boxes.json" if task == "det" else "labels.json")
    return p if os.path.exists(p) else None


def samples_of(set_dir, task, limit):
    """Sorted sample file names (those with labels when the set has a labels file)."""
    if not os.path.isdir(set_dir):
        fail(f"{set_dir} does not exist: run Models/make_data.py")
    files = sorted(f for f in os.listdir(set_dir) if f.endswith((".npy", ".npz")))
    lf = label_file(set_dir, task)
    if lf:
        labels = ocr_metrics.read_json(lf)
        files = [f for f in files if f in labels]
    if limit is not None:
        files = files[:limit]
    if not files:
        fail(f"{set_dir}: no samples")
    return files


def load_sample(path):
    """{input name or None (the model's only input): array}."""
    if path.endswith(".npz"):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    return {None: np.load(path)}


def chunks(set_dir, files, size):
    """Lists of (file, feed) with equal shapes, at most `size` long, in file order."""
    out, cur, key = [], [], None
    for f in files:
        feed = load_sample(os.path.join(set_dir, f))
        k = tuple((n, a.shape) for n, a in sorted(feed.items(), key=lambda x: str(x[0])))
        if cur and (k != key or len(cur) >= size):
            out.append(cur)
            cur = []
        cur.append((f, feed))
        key = k
    if cur:
        out.append(cur)
    return out


def stack(chunk):
    names = chunk[0][1].keys()
    if len(chunk) == 1:
        return dict(chunk[0][1])
    return {n: np.concatenate([feed[n] for _, feed in chunk], axis=0) for n in names}


def split_outputs(chunk, outputs, out_root):
    """outputs: {output name: array of the stacked chunk} -> out_root/<sample>/<output>.npy."""
    n = len(chunk)
    for i, (f, _) in enumerate(chunk):
        d = os.path.join(out_root, os.path.splitext(f)[0])
        os.makedirs(d, exist_ok=True)
        for name, a in outputs.items():
            if n > 1:
                if a.ndim == 0 or a.shape[0] != n:
                    fail(f"output {name} has shape {a.shape}; cannot split it into {n} samples")
                a = a[i:i + 1]
            np.save(os.path.join(d, ocr_metrics.safe_name(name) + ".npy"), a)


# ----------------------------------------------------------------------------- engines

def run_chunk(binary, model, chunk, threads, work, k):
    """One `dnnl-quant run` over a stacked chunk: (outputs by name, None) or (None, error)."""
    feed = stack(chunk)
    args, files = [], []
    for name, a in feed.items():
        p = os.path.join(work, f"chunk_{k}_{name or 'x'}.npy")
        np.save(p, a)
        files.append(p)
        args += ["--input", p if name is None else f"{name}={p}"]
    out_dir = os.path.join(work, f"chunk_{k}_out")
    cmd = [binary, "run", model, *args, "--output-dir", out_dir, "--threads", str(threads)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}"
        outputs = {}
        for line in r.stdout.splitlines():  # "NAME: f32 [..] -> PATH"
            left, sep, path = line.rpartition(" -> ")
            name = left.rpartition(": ")[0]
            if sep and name and path.endswith(".npy"):
                outputs[name] = np.load(path)
        if not outputs:
            return None, f"{' '.join(cmd)} wrote no outputs: {r.stdout.strip()}"
        return outputs, None
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        for p in files:
            os.remove(p)


def run_ours(binary, model, groups, out_root, threads, work):
    """Runs every chunk; a chunk of several samples that fails is rerun one sample at a time
    (with a warning: a batch the engine cannot run is an engine bug to report). Returns the
    errors of the failed batches."""
    batch_errors = []
    for k, chunk in enumerate(groups):
        outputs, err = run_chunk(binary, model, chunk, threads, work, k)
        if err is None:
            split_outputs(chunk, outputs, out_root)
            continue
        if len(chunk) == 1:
            fail(err)
        print(f"warning: batch of {len(chunk)} failed, rerunning one sample at a time: {err}", file=sys.stderr)
        batch_errors.append(err)
        for j, one in enumerate(chunk):
            outputs, err = run_chunk(binary, model, [one], threads, work, f"{k}_{j}")
            if err is not None:
                fail(err)
            split_outputs([one], outputs, out_root)
    return batch_errors


def run_ort(model, groups, out_root, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    for chunk in groups:
        feed = stack(chunk)
        if None in feed:
            feed = {in_names[0]: feed[None]}
        values = sess.run(None, feed)
        split_outputs(chunk, dict(zip(out_names, values)), out_root)


# ----------------------------------------------------------------------------- metrics

def metrics(task, out, labels, chars, threshold, compare):
    """ocr_metrics' task function on one output folder (labels filtered to the samples run)."""
    ns = argparse.Namespace(out=out, labels=None, boxes=None, output=None, chars=chars,
                            threshold=threshold, per_sample=False, compare=compare)
    if task == "det":
        ns.boxes = labels
    else:
        ns.labels = labels
    return ocr_metrics.TASKS[task](ns)


def summary(task, res):
    if task == "cls":
        s = f"accuracy {res['accuracy']:.4f}"
    elif task == "rec":
        s = f"word_acc {res['word_acc']:.4f}, word_acc_nocase {res['word_acc_nocase']:.4f}, CER {res['cer']:.4f}"
    elif task == "det":
        s = f"text_fraction {res['text_fraction']:.4f}"
        if "recall" in res:
            s = (f"box recall {res['recall']:.4f} ({res['boxes']} boxes), recall_full_box "
                 f"{res['recall_full_box']:.4f}, box_coverage_mean {res['box_coverage_mean']:.4f}, ") + s
    else:
        s = f"accuracy {res['accuracy']:.4f}; max speech prob per clip: " + \
            ", ".join(f"{os.path.splitext(k)[0]} {v:.4f}" for k, v in res["max_prob"].items())
    return s


def agreement(task, res):
    if "compare" not in res:
        return ""
    if task == "cls":
        s = f"argmax agreement {res['argmax_agreement']:.4f}"
    elif task == "rec":
        s = f"text agreement {res['text_agreement']:.4f}"
    elif task == "det":
        s = f"text-mask IoU {res['iou']:.4f} (per-sample mean {res['iou_mean']:.4f})"
    else:
        s = "max speech prob per clip compared"
    return s + f", max |diff| {res['max_abs_diff']:.3g}"


def reference_complete(ref, files):
    return all(os.path.isdir(os.path.join(ref, os.path.splitext(f)[0])) or
               os.path.exists(os.path.join(ref, os.path.splitext(f)[0] + ".npy")) for f in files)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("task", choices=list(TASKS))
    p.add_argument("model", nargs="?", help="ONNX model (default: the task's FP32 model)")
    p.add_argument("--set", help="sample folder under --data (default: see above)")
    p.add_argument("--engine", choices=["ours", "ort", "both"], default="ours")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N samples")
    p.add_argument("--chunk", type=int, metavar="N", help="samples per `dnnl-quant run` call")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--compare-to", metavar="OUTDIR",
                   help="reference output folder (default: DATA/<set>_out when complete; none: off)")
    p.add_argument("--chars", help="rec: v4 | v2 | MODEL.onnx | KEYS.txt (default: by --set)")
    p.add_argument("--threshold", type=float, default=0.3, help="det text threshold")
    p.add_argument("--keep", metavar="DIR", help="write the outputs under DIR and keep them")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="dnnl-quant (default: %(default)s)")
    p.add_argument("--data", default=os.path.join(fetch.CACHE, "data"), help="data folder (default: %(default)s)")
    p.add_argument("--per-sample", action="store_true", help="include per-sample results in the JSON")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.chunk is not None and args.chunk < 1:
        p.error("--chunk must be at least 1")
    if args.threads < 1:
        p.error("--threads must be at least 1")

    task = args.task
    set_name = args.set
    if set_name is None:
        set_name = TASKS[task][0]
        if task == "rec" and args.model and "v2" in os.path.basename(args.model).lower():
            set_name = "words_v2"
    if set_name not in SETS[task]:
        print(f"note: set {set_name} is not one of {SETS[task]} for {task}", file=sys.stderr)
    model = args.model
    if model is None:
        entry = TASKS[task][1] if set_name != "words_v2" else "ppocr_v2_rec"
        model = fetch.fetch(models_json()[entry])
    if not os.path.isfile(model):
        fail(f"{model}: no such model file")
    chars = args.chars or ("v2" if set_name == "words_v2" else "v4")
    chunk = args.chunk or (1 if task == "vad" or set_name == "scans" else DEFAULT_CHUNK[task])

    set_dir = os.path.join(args.data, set_name)
    files = samples_of(set_dir, task, args.limit)
    engines = ["ours", "ort"] if args.engine == "both" else [args.engine]
    binary = ensure_binary(args.binary) if "ours" in engines else None

    ref = args.compare_to
    if ref is None:
        cand = os.path.join(args.data, set_name + "_out")
        ref = cand if os.path.isdir(cand) and reference_complete(cand, files) else None
    elif ref == "none":
        ref = None
    elif not os.path.isdir(ref):
        fail(f"--compare-to {ref}: no such folder")
    elif not reference_complete(ref, files):
        fail(f"--compare-to {ref}: outputs missing for some of the {len(files)} samples")

    root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="evaluate_")
    os.makedirs(root, exist_ok=True)
    work = os.path.join(root, "work")
    os.makedirs(work, exist_ok=True)
    # Labels of exactly the samples run (ocr_metrics iterates over the labels file).
    labels = None
    lf = label_file(set_dir, task)
    if lf is not None:
        allx = ocr_metrics.read_json(lf)
        labels = os.path.join(root, f"{set_name}_{os.path.basename(lf)}")
        with open(labels, "w", encoding="utf-8") as f:
            json.dump({s: allx[s] for s in files}, f, ensure_ascii=False)

    groups = chunks(set_dir, files, chunk)
    shapes = sorted({tuple(next(iter(stack(g).values())).shape) for g in groups})  # first input
    print(f"{task} on {set_name}: {len(files)} samples in {len(groups)} chunk(s) "
          f"(input shapes {', '.join(str(list(s)) for s in shapes[:4])}{' ...' if len(shapes) > 4 else ''}); "
          f"model {model}")
    record = {"task": task, "set": set_name, "model": model, "samples": len(files),
              "chunks": len(groups), "threads": args.threads, "reference": ref, "engines": {}}
    outs = {}
    try:
        for e in engines:
            out = os.path.join(root, f"{set_name}_{e}")
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            t0 = time.perf_counter()
            batch_errors = []
            if e == "ours":
                batch_errors = run_ours(binary, model, groups, out, args.threads, work)
            else:
                run_ort(model, groups, out, args.threads)
            seconds = time.perf_counter() - t0
            outs[e] = out
            res, per = metrics(task, out, labels, chars, args.threshold, ref)
            name = "ours" if e == "ours" else "onnxruntime"
            print(f"  {name:11s}: {summary(task, res)}  [{seconds:.1f} s wall, incl. model load]")
            if ref:
                print(f"  {'':11s}  vs {ref}: {agreement(task, res)}")
            res["seconds"] = round(seconds, 3)
            if batch_errors:
                print(f"  {'':11s}  ({len(batch_errors)} batch(es) failed and ran one sample at a time: see the warnings)")
                res["failed_batches"] = batch_errors
            if args.per_sample:
                res["per_sample"] = per
            record["engines"][e] = res
        if len(outs) == 2:
            res, _ = metrics(task, outs["ours"], labels, chars, args.threshold, outs["ort"])
            print(f"  ours vs onnxruntime: {agreement(task, res)}")
            record["ours_vs_ort"] = {k: v for k, v in res.items()
                                     if k in ("argmax_agreement", "text_agreement", "iou", "iou_mean", "max_abs_diff")}
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    main()
