#!/usr/bin/env python3
"""Reference outputs of an ONNX model from onnxruntime (CPU), as .npy files for Swift tests.

  Models/reference_outputs.py MODEL.onnx --input NAME=FILE.npy [--input ...] --output-dir DIR
  Models/reference_outputs.py MODEL.onnx --batch-dir SAMPLES [--output-dir DIR]
  ... [--opt-level disable|basic|extended|all] [--compare-opt-levels] [--threads N]

Single mode: each --input feeds one graph input (NAME=FILE.npy; NAME=FILE.npz[KEY] takes one
member of an .npz; FILE.npz alone feeds every member by its key). With a single-input model,
--input FILE.npy (no NAME=) is enough.

Batch mode: every sample file in SAMPLES (sorted; *.npy feeds the model's only input, *.npz
feeds each graph input from the member of the same name) is run on its own and its outputs
written to DIR/<sample>/, where <sample> is the file name without .npy/.npz; DIR defaults to
SAMPLES_out (SAMPLES with `_out` appended: data/lines -> data/lines_out/line_00000/...).

Output files: the output's name with every character outside [A-Za-z0-9._-] replaced by `_`,
plus `.npy` (`save_infer_model/scale_0.tmp_1` -> `save_infer_model_scale_0.tmp_1.npy`),
written with numpy.save (format 1.0, little-endian, C order), dtype as onnxruntime returns it.

--opt-level: onnxruntime graph optimisation: `disable` = ORT_DISABLE_ALL (the plain ONNX
semantics, no fusions), `all` = ORT_ENABLE_ALL (onnxruntime's default). Default: all.
--compare-opt-levels also runs the other of disable/all and prints the largest absolute
difference per output (nothing more is written): a measure of how much float rounding alone
moves an output, useful to size Swift test tolerances.

Prints one JSON line per sample: {"sample", "outputs": {name: {"file", "shape", "dtype"}}, ...}.
Needs: numpy, onnxruntime.
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
import onnxruntime as ort

OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def safe_name(output_name):
    """File name of an output: characters outside [A-Za-z0-9._-] become '_', plus .npy."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", output_name) + ".npy"


def session(model, level, threads, verbose):
    so = ort.SessionOptions()
    so.graph_optimization_level = OPT_LEVELS[level]
    so.log_severity_level = 0 if verbose else 3  # hides e.g. declared-vs-actual shape warnings
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def load_feed(sess, specs):
    """--input specs -> {graph input name: array}."""
    names = [i.name for i in sess.get_inputs()]
    feed = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = None, spec
        key = None
        m = re.fullmatch(r"(.*\.npz)\[(.+)\]", path)
        if m:
            path, key = m.group(1), m.group(2)
        if path.endswith(".npz"):
            with np.load(path) as z:
                if key is not None:
                    feed[name or key] = z[key]
                elif name is not None:
                    sys.exit(f"--input {spec}: give the member, NAME={path}[KEY]")
                else:
                    feed.update({k: z[k] for k in z.files})
        else:
            if name is None:
                if len(names) != 1:
                    sys.exit(f"--input {spec}: the model has inputs {names}; write NAME=FILE.npy")
                name = names[0]
            feed[name] = np.load(path)
    return check_feed(sess, feed)


def check_feed(sess, feed):
    names = [i.name for i in sess.get_inputs()]
    missing = [n for n in names if n not in feed]
    extra = [n for n in feed if n not in names]
    if missing or extra:
        sys.exit(f"inputs: model wants {names}; missing {missing}, unknown {extra}")
    return feed


def sample_feed(sess, path):
    names = [i.name for i in sess.get_inputs()]
    if path.endswith(".npz"):
        with np.load(path) as z:
            feed = {k: z[k] for k in z.files}
    else:
        if len(names) != 1:
            sys.exit(f"{path}: the model has inputs {names}; a sample for it must be an .npz")
        feed = {names[0]: np.load(path)}
    return check_feed(sess, feed)


def write_outputs(sess, outputs, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    info = {}
    for meta, value in zip(sess.get_outputs(), outputs):
        value = np.asarray(value)
        fname = safe_name(meta.name)
        np.save(os.path.join(out_dir, fname), value)
        info[meta.name] = {"file": fname, "shape": list(value.shape), "dtype": str(value.dtype)}
    return info


def max_diffs(sess, a, b):
    return {meta.name: float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
            if np.asarray(x).size else 0.0
            for meta, x, y in zip(sess.get_outputs(), a, b)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.add_argument("--batch-dir", metavar="SAMPLES")
    p.add_argument("--output-dir", metavar="DIR")
    p.add_argument("--opt-level", choices=list(OPT_LEVELS), default="all")
    p.add_argument("--compare-opt-levels", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: onnxruntime's)")
    p.add_argument("--verbose", action="store_true", help="onnxruntime warnings too")
    args = p.parse_args(argv)
    if bool(args.input) == bool(args.batch_dir):
        p.error("give either --input ... or --batch-dir")
    if args.input and not args.output_dir:
        p.error("--input needs --output-dir")

    sess = session(args.model, args.opt_level, args.threads, args.verbose)
    other = None
    if args.compare_opt_levels:
        other_level = "disable" if args.opt_level != "disable" else "all"
        other = session(args.model, other_level, args.threads, args.verbose)

    if args.input:
        jobs = [(None, load_feed(sess, args.input), args.output_dir)]
    else:
        src = os.path.normpath(args.batch_dir)
        out_root = args.output_dir or src + "_out"
        files = sorted(f for f in os.listdir(src) if f.endswith((".npy", ".npz")))
        if not files:
            sys.exit(f"--batch-dir {src}: no .npy/.npz samples")
        jobs = ((f, sample_feed(sess, os.path.join(src, f)),
                 os.path.join(out_root, os.path.splitext(f)[0])) for f in files)

    worst = {}
    for sample, feed, out_dir in jobs:
        outputs = sess.run(None, feed)
        record = {"sample": sample, "dir": out_dir,
                  "outputs": write_outputs(sess, outputs, out_dir)}
        if other is not None:
            d = max_diffs(sess, outputs, other.run(None, feed))
            record["max_abs_diff_vs_other_opt_level"] = d
            for k, v in d.items():
                worst[k] = max(worst.get(k, 0.0), v)
        print(json.dumps(record))
    if other is not None:
        print(json.dumps({"opt_levels": [args.opt_level, "disable" if args.opt_level != "disable" else "all"],
                          "max_abs_diff_over_samples": worst}))


if __name__ == "__main__":
    main()
