#!/usr/bin/env python3
"""Accuracy metrics of model outputs on the Models/make_data.py sets; prints a JSON summary.

  Models/ocr_metrics.py cls OUT [--labels data/lines/labels.json]
  Models/ocr_metrics.py rec OUT --chars v4|v2|MODEL.onnx|KEYS.txt [--labels data/words_v4/labels.json]
  Models/ocr_metrics.py det OUT [--boxes data/pages/boxes.json] [--threshold 0.3]
  Models/ocr_metrics.py vad OUT [--labels data/speech/labels.json]
  Models/ocr_metrics.py all [--data DIR] [--suffix _out] [--compare-suffix _swift]
  any task: --compare OUT2 (agreement of two output folders), --per-sample, --output NAME

OUT is a folder of model outputs, one sample per entry, in either layout:
  OUT/<sample>/<output>.npy   (Models/reference_outputs.py --batch-dir, `dnnl-quant run`), or
  OUT/<sample>.npy            (one output per sample),
where <sample> is the sample file name without .npy/.npz. When a sample folder holds several
outputs, --output picks one (its name as given or as a file name); vad takes speech_probs.
Labels default to the sample folder the outputs were made from: OUT without its `_out` suffix.

Metrics:
  cls  accuracy of argmax over [N,2] (0 = 0 deg, 1 = 180 deg) against the labels.
  rec  CTC greedy decode: argmax per time step, merge repeats, drop blank (index 0); index
       i >= 1 is character i-1 of the list plus a final space. Character list: `v4` = the
       ppocr_v4_rec model's metadata_props `character` (LF separated), `v2` = ppocr_keys_v1.txt
       (CRLF separated, no final newline), both fetched by Models/fetch.py, or a given
       MODEL.onnx / KEYS.txt. Spaces are removed from the decoded text before comparing
       (PaddleOCR RecMetric's default ignore_space; the recognisers emit spaces for the padding).
       word_acc = exact (case-sensitive) matches / samples; word_acc_nocase likewise ignoring
       case; cer = sum of Levenshtein distances / sum of label lengths.
  det  text mask = prob > threshold (0.3, PaddleOCR's DB thresh). A word box counts as found
       when at least half of the pixels of its DB kernel are text. The kernel is the ink box
       shrunk on every side by PaddleOCR's DB training offset D = A (1 - 0.4^2) / L (A area, L
       perimeter, shrink ratio 0.4), which is the region the detector is trained to mark (it
       marks a band in the middle of each word, about 35-70% of the tight ink box; the unclip
       of post-processing grows it back). `recall` uses that rule; `recall_full_box` applies the
       same >= 0.5 test to the whole ink box (strict; reported for reference only);
       `box_coverage_mean` is the mean text fraction over whole ink boxes. `text_fraction` is
       the mean fraction of text pixels (also for scans, which have no boxes).
  vad  max speech probability per clip; mean/min/max of these for speech vs noise clips, and
       `accuracy` of (max prob > 0.5) == (label is speech).
  --compare OUT2: cls argmax agreement, rec decoded-text agreement, det text-mask IoU (summed
       intersections / summed unions over samples, and the per-sample mean), vad max |diff|;
       every task: the largest absolute difference of the raw outputs.

Exit status 1 when an output is missing or has an unexpected shape.
Needs: numpy, onnx (only for --chars v4 / MODEL.onnx).
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repository when importing fetch.py


def fail(msg):
    sys.exit(f"ocr_metrics: {msg}")


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


# ----------------------------------------------------------------------------- loading

def load_output(folder, sample, output=None, prefer=()):
    """The output array of one sample (see the module docstring for the layouts)."""
    stem = os.path.splitext(sample)[0]
    sub = os.path.join(folder, stem)
    if os.path.isdir(sub):
        files = sorted(f for f in os.listdir(sub) if f.endswith(".npy"))
        wanted = [output] if output else list(prefer)
        for w in wanted:
            for cand in (w, w + ".npy", safe_name(w) + ".npy"):
                if cand in files:
                    return np.load(os.path.join(sub, cand))
        if output:
            fail(f"{sub}: no output {output} (has {files})")
        if len(files) != 1:
            fail(f"{sub}: {len(files)} outputs {files}; pick one with --output")
        return np.load(os.path.join(sub, files[0]))
    flat = os.path.join(folder, stem + ".npy")
    if os.path.exists(flat):
        return np.load(flat)
    fail(f"no output for sample {sample} in {folder} (looked for {sub}/ and {flat})")


def default_labels(out_folder, filename):
    base = os.path.normpath(out_folder)
    if base.endswith("_out"):
        p = os.path.join(base[:-4], filename)
        if os.path.exists(p):
            return p
    fail(f"give the labels file ({filename}); it is not next to {out_folder} without _out")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_chars(spec):
    """CTC character list (without blank, with the final space appended)."""
    if spec in ("v4", "v2"):
        import fetch
        entries = {e["name"]: e for e in read_json(os.path.join(HERE, "models.json"))["entries"]}
        spec = fetch.fetch(entries["ppocr_v4_rec" if spec == "v4" else "ppocr_keys_v1"])
    if spec.endswith(".onnx"):
        import onnx
        model = onnx.load(spec, load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
        if "character" not in meta:
            fail(f"{spec} has no metadata_props 'character'")
        chars = meta["character"].split("\n")
    else:
        with open(spec, encoding="utf-8", newline="") as f:
            text = f.read()
        sep = "\r\n" if "\r\n" in text else "\n"
        chars = text.split(sep)
        if chars and chars[-1] == "":
            chars.pop()  # a final newline ends the last entry; it is not an empty entry
    return chars + [" "]


def ctc_decode(probs, chars):
    """Greedy CTC: [T,C] (or [1,T,C]) -> text, with spaces kept."""
    probs = np.asarray(probs)
    if probs.ndim == 3:
        if probs.shape[0] != 1:
            fail(f"rec output of batch {probs.shape[0]}; expected one sample per file")
        probs = probs[0]
    if probs.shape[-1] != len(chars) + 1:
        fail(f"rec output has {probs.shape[-1]} classes; the character list gives {len(chars) + 1}")
    idx = probs.argmax(-1)
    keep = np.ones(len(idx), bool)
    keep[1:] = idx[1:] != idx[:-1]
    keep &= idx != 0
    return "".join(chars[i - 1] for i in idx[keep])


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def max_abs_diff(a, b):
    if a.shape != b.shape:
        fail(f"compare: shapes differ {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


# ----------------------------------------------------------------------------- tasks

def task_cls(args):
    labels = read_json(args.labels or default_labels(args.out, "labels.json"))
    per, correct, agree, diff = {}, 0, 0, 0.0
    for s, lab in sorted(labels.items()):
        y = load_output(args.out, s, args.output).reshape(-1)
        if y.size != 2:
            fail(f"cls output of {s} has shape {y.shape}; expected [1,2]")
        pred = int(y.argmax())
        correct += pred == lab["label"]
        per[s] = {"label": lab["label"], "pred": pred}
        if args.compare:
            z = load_output(args.compare, s, args.output).reshape(-1)
            agree += int(z.argmax()) == pred
            diff = max(diff, max_abs_diff(y, z))
    n = len(labels)
    res = {"task": "cls", "outputs": args.out, "n": n, "accuracy": correct / n}
    if args.compare:
        res.update(compare=args.compare, argmax_agreement=agree / n, max_abs_diff=diff)
    return res, per


def task_rec(args):
    labels = read_json(args.labels or default_labels(args.out, "labels.json"))
    if not args.chars:
        fail("rec needs --chars v4|v2|MODEL.onnx|KEYS.txt")
    chars = load_chars(args.chars)
    per, exact, nocase, edits, length, agree, diff = {}, 0, 0, 0, 0, 0, 0.0
    for s, lab in sorted(labels.items()):
        y = load_output(args.out, s, args.output)
        text = ctc_decode(y, chars).replace(" ", "")
        truth = lab["text"].replace(" ", "")
        exact += text == truth
        nocase += text.lower() == truth.lower()
        d = levenshtein(text, truth)
        edits += d
        length += len(truth)
        per[s] = {"text": truth, "pred": text, "edits": d}
        if args.compare:
            z = load_output(args.compare, s, args.output)
            other = ctc_decode(z, chars).replace(" ", "")
            agree += other == text
            diff = max(diff, max_abs_diff(y, z))
            per[s]["pred_compare"] = other
    n = len(labels)
    res = {"task": "rec", "outputs": args.out, "chars": args.chars, "n": n,
           "word_acc": exact / n, "word_acc_nocase": nocase / n, "cer": edits / max(1, length)}
    if args.compare:
        res.update(compare=args.compare, text_agreement=agree / n, max_abs_diff=diff)
    return res, per


def kernel(box):
    """The DB kernel of an ink box: shrunk by D = A (1 - r^2) / L, r = 0.4 (at least 1 px left)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d = w * h * (1 - 0.4 ** 2) / (2 * (w + h))
    dx, dy = min(d, (w - 1) / 2), min(d, (h - 1) / 2)
    return [int(round(x0 + dx)), int(round(y0 + dy)),
            max(int(round(x1 - dx)), int(round(x0 + dx)) + 1),
            max(int(round(y1 - dy)), int(round(y0 + dy)) + 1)]


def prob_map(a, sample):
    a = np.asarray(a)
    if a.ndim == 4 and a.shape[:2] == (1, 1):
        return a[0, 0]
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    if a.ndim == 2:
        return a
    fail(f"det output of {sample} has shape {a.shape}; expected [1,1,H,W]")


def task_det(args):
    boxes = None
    if args.boxes:
        boxes = read_json(args.boxes)
    elif os.path.normpath(args.out).endswith("_out") and \
            os.path.exists(os.path.join(os.path.normpath(args.out)[:-4], "boxes.json")):
        boxes = read_json(os.path.join(os.path.normpath(args.out)[:-4], "boxes.json"))
    if boxes is not None:
        samples = sorted(boxes)
    else:  # scans: the samples are whatever the sample folder (or the outputs) hold
        src = os.path.normpath(args.out)
        src = src[:-4] if src.endswith("_out") and os.path.isdir(src[:-4]) else None
        if src:
            samples = sorted(f for f in os.listdir(src) if f.endswith((".npy", ".npz")))
        else:
            samples = sorted(e if e.endswith(".npy") else e + ".npy" for e in os.listdir(args.out)
                             if os.path.isdir(os.path.join(args.out, e)) or e.endswith(".npy"))
    thr = args.threshold
    per, found, found_full, nboxes, cover, frac = {}, 0, 0, 0, [], []
    inter_sum, union_sum, ious, diff = 0, 0, [], 0.0
    for s in samples:
        p = prob_map(load_output(args.out, s, args.output), s)
        mask = p > thr
        frac.append(float(mask.mean()))
        rec = {"text_fraction": frac[-1]}
        if boxes is not None:
            hits = []
            for item in boxes[s]:
                x0, y0, x1, y1 = item["box"]
                k = kernel(item["box"])
                full = float(mask[y0:y1, x0:x1].mean())
                kern = float(mask[k[1]:k[3], k[0]:k[2]].mean())
                cover.append(full)
                found += kern >= 0.5
                found_full += full >= 0.5
                nboxes += 1
                hits.append({"text": item["text"], "kernel_fraction": round(kern, 4),
                             "box_fraction": round(full, 4)})
            rec["boxes"] = hits
        if args.compare:
            q = prob_map(load_output(args.compare, s, args.output), s)
            other = q > thr
            inter, union = int((mask & other).sum()), int((mask | other).sum())
            inter_sum += inter
            union_sum += union
            ious.append(inter / union if union else 1.0)
            diff = max(diff, max_abs_diff(p, q))
            rec["iou"] = ious[-1]
        per[s] = rec
    res = {"task": "det", "outputs": args.out, "n": len(samples), "threshold": thr,
           "text_fraction": float(np.mean(frac)) if frac else 0.0}
    if boxes is not None:
        res.update(boxes=nboxes, recall=found / max(1, nboxes),
                   recall_full_box=found_full / max(1, nboxes),
                   box_coverage_mean=float(np.mean(cover)) if cover else 0.0)
    if args.compare:
        res.update(compare=args.compare, iou=inter_sum / union_sum if union_sum else 1.0,
                   iou_mean=float(np.mean(ious)) if ious else 1.0, max_abs_diff=diff)
    return res, per


def task_vad(args):
    labels = read_json(args.labels or default_labels(args.out, "labels.json"))
    per, groups, correct, diff = {}, {"speech": [], "noise": []}, 0, 0.0
    for s, lab in sorted(labels.items()):
        y = load_output(args.out, s, args.output, prefer=("speech_probs",)).reshape(-1)
        m = float(y.max())
        groups[lab["label"]].append(m)
        correct += (m > 0.5) == (lab["label"] == "speech")
        per[s] = {"label": lab["label"], "max_prob": round(m, 6)}
        if args.compare:
            z = load_output(args.compare, s, args.output, prefer=("speech_probs",)).reshape(-1)
            diff = max(diff, max_abs_diff(y, z))
    res = {"task": "vad", "outputs": args.out, "n": len(labels), "accuracy": correct / len(labels)}
    for g, v in groups.items():
        if v:
            res[g] = {"n": len(v), "max_prob_mean": float(np.mean(v)),
                      "max_prob_min": float(np.min(v)), "max_prob_max": float(np.max(v))}
    res["max_prob"] = {s: r["max_prob"] for s, r in per.items()}
    if args.compare:
        res.update(compare=args.compare, max_abs_diff=diff)
    return res, per


TASKS = {"cls": task_cls, "rec": task_rec, "det": task_det, "vad": task_vad}
# `all`: folder under --data -> (task, extra arguments)
STANDARD = [("lines", "cls", {}), ("words_v4", "rec", {"chars": "v4"}),
            ("words_v2", "rec", {"chars": "v2"}), ("pages", "det", {}), ("scans", "det", {}),
            ("speech", "vad", {})]


def run_all(args):
    import fetch
    data = args.data or os.path.join(fetch.CACHE, "data")
    results = {}
    for folder, task, extra in STANDARD:
        out = os.path.join(data, folder + args.suffix)
        if not os.path.isdir(out):
            continue
        sub = argparse.Namespace(out=out, labels=None, boxes=None, output=None, chars=None,
                                 threshold=args.threshold, per_sample=False, compare=None)
        vars(sub).update(extra)
        if args.compare_suffix:
            other = os.path.join(data, folder + args.compare_suffix)
            sub.compare = other if os.path.isdir(other) else None
        # the default label lookup strips `_out`; other suffixes name the labels explicitly
        if not out.endswith("_out"):
            lf = "boxes.json" if folder == "pages" else "labels.json"
            p = os.path.join(data, folder, lf)
            if task == "det":
                sub.boxes = p if os.path.exists(p) else None
            else:
                sub.labels = p
        results[folder] = TASKS[task](sub)[0]
    if not results:
        fail(f"no output folders *{args.suffix} under {data}")
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("task", choices=list(TASKS) + ["all"])
    p.add_argument("out", nargs="?", help="output folder (not for `all`)")
    p.add_argument("--labels", help="labels.json (cls, rec, vad)")
    p.add_argument("--boxes", help="boxes.json (det)")
    p.add_argument("--chars", help="rec: v4 | v2 | MODEL.onnx | KEYS.txt")
    p.add_argument("--output", help="which output of a sample folder holding several")
    p.add_argument("--compare", metavar="OUT2", help="a second output folder to compare with")
    p.add_argument("--threshold", type=float, default=0.3, help="det text threshold")
    p.add_argument("--per-sample", action="store_true", help="include per-sample results")
    p.add_argument("--data", help="all: the data folder (default: the cache's data/)")
    p.add_argument("--suffix", default="_out", help="all: output folder suffix")
    p.add_argument("--compare-suffix", help="all: compare with folders of this suffix")
    args = p.parse_args(argv)
    if args.task == "all":
        print(json.dumps(run_all(args), indent=1, ensure_ascii=False))
        return
    if not args.out:
        p.error(f"{args.task} needs the output folder")
    res, per = TASKS[args.task](args)
    if args.per_sample:
        res["per_sample"] = per
    print(json.dumps(res, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
