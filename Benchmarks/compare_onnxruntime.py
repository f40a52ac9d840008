#!/usr/bin/env python3
"""Latency of dnnl-quant vs onnxruntime on the same ONNX files, in one run, interleaved: the real
models in FP32, the seed's zoo, and QDQ files (QAT and other quantizers' INT8), which both
engines run as given.

  Benchmarks/compare_onnxruntime.py                       # det and rec, 1 and 2 threads, 3 rounds
  Benchmarks/compare_onnxruntime.py --models det,rec,cls,rec_v2,vad --rounds 5 --seconds 3
  Benchmarks/compare_onnxruntime.py --models resnet50,mobilenet_v2 --threads 1   # the seed's zoo
  Benchmarks/compare_onnxruntime.py --threads 1 --binary .build/release/dnnl-quant --build
  Benchmarks/compare_onnxruntime.py --ours-env OMP_WAIT_POLICY=passive   # our subprocess's env
  Benchmarks/compare_onnxruntime.py --models cls@ort_u8s8,rec@ort_s8s8,det@nncf,qat_mnist   # QDQ

Each round measures, for every model and thread count, both engines back to back (which one
goes first alternates from round to round), each for --seconds after an untimed warm-up run:
  ours         `dnnl-quant bench MODEL --input ... --threads N --seconds S --json` (a subprocess
               of the release binary; its median latency; the first run, which compiles the
               plan, is not timed);
  onnxruntime  in this process, CPU provider, ORT_ENABLE_ALL, intra_op_num_threads=N,
               inter_op_num_threads=1, sequential execution; a fresh session per measurement
               (created and warmed up untimed, released afterwards so its threads do not spin
               while ours runs); its median latency.
Batch 1. The table gives the median over rounds of each round's median latency, and
ours/ORT speed = ORT ms / ours ms (> 1: ours is faster). The last line is one JSON object
with every round's numbers and the machine's load average before and after.

Models (weights fetched by Models/fetch.py; inputs from Models/make_data.py's data folder,
$DNNL_QUANT_CACHE/data, default ~/.cache/swift-dnnl-quantization/data):
  det     ppocr_v4_det  pages/page_00000.npy     x[1,3,640,640]
  rec     ppocr_v4_rec  words_v4/word_00000.npy  x[1,3,48,320]
  cls     ppocr_cls     lines/line_00000.npy     x[1,3,48,192]
  rec_v2  ppocr_v2_rec  words_v2/word_00000.npy  x[1,3,32,320]
  vad     silero_vad    speech/Front_Center.npz  input[T,576], h, c
QDQ files (run as given by both engines; onnxruntime fuses them into its QLinear kernels):
  NAME@VARIANT  $DNNL_QUANT_CACHE/qdq/<entry>_<VARIANT>.onnx (Models/qdq_models.py: variants
                ort_u8s8, ort_s8s8, nncf) on NAME's input, e.g. cls@ort_u8s8
  qat_mnist     $DNNL_QUANT_CACHE/qat/mnist/mnist_qat.onnx (Models/qat_mnist.py) on the first
                held-out digit x[1,1,28,28]

The binary (default .build/release/dnnl-quant) is built with `swift build -c release --product
dnnl-quant` when missing or with --build; a warning says when it is older than Sources/.
The machine may be shared: numbers move with its load (see the load averages printed), and at
2 threads on a 2-core machine any other load makes the 2-thread rows meaningless (libgomp's
default active waiting makes ours collapse there; OMP_WAIT_POLICY=passive avoids most of it).

Needs: numpy, onnxruntime (Models/requirements.txt).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository when importing fetch.py
import fetch  # noqa: E402  (Models/fetch.py: CACHE and the model fetcher)
import evaluate  # noqa: E402  (Models/evaluate.py: ensure_binary)

MODELS = {
    # name: (models.json entry, data file relative to the data folder)
    "det": ("ppocr_v4_det", "pages/page_00000.npy"),
    "rec": ("ppocr_v4_rec", "words_v4/word_00000.npy"),
    "cls": ("ppocr_cls", "lines/line_00000.npy"),
    "rec_v2": ("ppocr_v2_rec", "words_v2/word_00000.npy"),
    "vad": ("silero_vad", "speech/Front_Center.npz"),
}
# The seed's CNNs as paddle2onnx exports them (Models/paddle_export.py zoo NAME; made when
# missing, cached in $DNNL_QUANT_CACHE/paddle/zoo with a 1x3x224x224 input NAME.input.npy).
ZOO = ["resnet50", "resnet101", "mobilenet_v1", "mobilenet_v2", "vgg16", "vgg19"]
DEFAULT_BINARY = os.path.join(ROOT, ".build", "release", "dnnl-quant")


def fail(msg):
    sys.exit(f"compare_onnxruntime: {msg}")


def model_path(entry):
    with open(os.path.join(ROOT, "Models", "models.json")) as f:
        entries = {e["name"]: e for e in json.load(f)["entries"]}
    return fetch.fetch(entries[entry])


def ensure_binary(path, build):
    """The release binary, built when missing or asked (Models/evaluate.py's helper)."""
    return evaluate.ensure_binary(path, build=build)


def load_feed(data_file, tmp):
    """{input name: array} and the matching --input arguments for `dnnl-quant bench`."""
    if data_file.endswith(".npz"):
        with np.load(data_file) as z:
            feed = {k: z[k] for k in z.files}
    else:
        feed = {None: np.load(data_file)}
    args = []
    for name, a in feed.items():
        if name is None:
            args += ["--input", data_file]
        else:
            p = os.path.join(tmp, f"{os.path.basename(data_file)}.{name}.npy")
            np.save(p, a)
            args += ["--input", f"{name}={p}"]
    return feed, args


def measure_ours(binary, model, input_args, threads, seconds, env):
    cmd = [binary, "bench", model, *input_args, "--threads", str(threads),
           "--seconds", str(seconds), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.strip()}")
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        fail(f"{' '.join(cmd)}: no JSON line in its output:\n{r.stdout}")
    j = json.loads(lines[-1])
    return j["latency_ms"]["median"], j["iterations"]


def measure_ort(model, feed, threads, seconds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if None in feed:
        feed = {names[0]: feed[None]}
    sess.run(None, feed)  # warm-up, untimed (like ours: its first run compiles the plan)
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - start >= seconds:
            break
    del sess
    return statistics.median(times), len(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--models", default="det,rec", help=f"comma separated, of {','.join(MODELS)} (default: det,rec)")
    p.add_argument("--threads", default="1,2", help="comma separated thread counts (default: 1,2)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default: 3)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement (default: 2)")
    p.add_argument("--binary", default=DEFAULT_BINARY, help="dnnl-quant binary (default: %(default)s)")
    p.add_argument("--build", action="store_true", help="build the release binary first")
    p.add_argument("--ours-env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment of our subprocess, e.g. OMP_WAIT_POLICY=passive (repeatable)")
    p.add_argument("--data", default=os.path.join(fetch.CACHE, "data"), help="data folder (default: %(default)s)")
    args = p.parse_args(argv)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS and m not in ZOO and m != "qat_mnist" and m.split("@")[0] not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {list(MODELS) + ZOO}")
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        p.error(f"--threads {args.threads}: give comma separated integers")
    if not threads or min(threads) < 1 or args.rounds < 1 or args.seconds <= 0:
        p.error("--threads must be >= 1, --rounds >= 1, --seconds > 0")

    ours_env = {}
    for kv in args.ours_env:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            p.error(f"--ours-env {kv}: give KEY=VALUE")
        ours_env[k] = v

    import onnxruntime as ort
    binary = ensure_binary(args.binary, args.build)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    info = subprocess.run([binary, "info"], capture_output=True, text=True).stdout
    isa = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("ISA:")), "?")

    tmp = tempfile.mkdtemp(prefix="compare_ort_")
    cases = {}
    for m in models:
        if m in ZOO:
            base = os.path.join(fetch.CACHE, "paddle", "zoo", m)
            if not os.path.exists(base + ".onnx"):
                subprocess.run([sys.executable, os.path.join(ROOT, "Models", "paddle_export.py"), "zoo", m], check=True)
            feed, input_args = load_feed(base + ".input.npy", tmp)
            cases[m] = (base + ".onnx", base + ".input.npy", feed, input_args)
            continue
        if m == "qat_mnist":
            folder = os.path.join(fetch.CACHE, "qat", "mnist")
            if not os.path.exists(os.path.join(folder, "mnist_qat.onnx")):
                subprocess.run([sys.executable, os.path.join(ROOT, "Models", "qat_mnist.py")], check=True)
            data_file = os.path.join(tmp, "mnist_x.npy")
            with np.load(os.path.join(folder, "heldout.npz")) as z:
                np.save(data_file, z["x"][:1])
            feed, input_args = load_feed(data_file, tmp)
            cases[m] = (os.path.join(folder, "mnist_qat.onnx"), data_file, feed, input_args)
            continue
        name, _, variant = m.partition("@")
        entry, rel = MODELS[name]
        data_file = os.path.join(args.data, rel)
        if not os.path.exists(data_file):
            fail(f"{data_file} is missing: run Models/make_data.py")
        feed, input_args = load_feed(data_file, tmp)
        if variant:
            qdq = os.path.join(fetch.CACHE, "qdq", f"{entry}_{variant}.onnx")
            if not os.path.exists(qdq):
                subprocess.run([sys.executable, os.path.join(ROOT, "Models", "qdq_models.py"), "--models", entry,
                                "--variants", variant], check=True)
            cases[m] = (qdq, data_file, feed, input_args)
        else:
            cases[m] = (model_path(entry), data_file, feed, input_args)

    load_before = os.getloadavg()
    print(f"dnnl-quant {version} ({isa}) vs onnxruntime {ort.__version__}; {os.cpu_count()} CPUs; "
          f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"{args.rounds} rounds x {len(models)} models x threads {threads}, {args.seconds} s per "
          "measurement, batch 1; engines alternate within each round"
          + (f"; ours with {' '.join(args.ours_env)}" if ours_env else ""), flush=True)
    rounds = {(m, t): {"ours": [], "ort": [], "ours_iters": [], "ort_iters": []} for m in models for t in threads}
    for r in range(args.rounds):
        for m in models:
            model, _, feed, input_args = cases[m]
            for t in threads:
                order = ("ours", "ort") if r % 2 == 0 else ("ort", "ours")
                for engine in order:
                    if engine == "ours":
                        ms, n = measure_ours(binary, model, input_args, t, args.seconds, ours_env)
                    else:
                        ms, n = measure_ort(model, feed, t, args.seconds)
                    rounds[(m, t)][engine].append(ms)
                    rounds[(m, t)][engine + "_iters"].append(n)
                rr = rounds[(m, t)]
                print(f"  round {r + 1}: {m} {t} thread(s): ours {rr['ours'][-1]:.2f} ms, "
                      f"onnxruntime {rr['ort'][-1]:.2f} ms", flush=True)
    load_after = os.getloadavg()

    print()
    print("| model | threads | ours ms | onnxruntime ms | ours/ORT speed |")
    print("| --- | --- | --- | --- | --- |")
    results = []
    for m in models:
        for t in threads:
            rr = rounds[(m, t)]
            ours, ortm = statistics.median(rr["ours"]), statistics.median(rr["ort"])
            ratio = ortm / ours
            print(f"| {m} | {t} | {ours:.2f} | {ortm:.2f} | {ratio:.2f} |")
            results.append({"model": m, "file": os.path.basename(cases[m][0]),
                            "input": os.path.relpath(cases[m][1], args.data), "threads": t,
                            "ours_ms": round(ours, 4), "ort_ms": round(ortm, 4), "speed_ratio": round(ratio, 4),
                            "ours_rounds_ms": [round(x, 4) for x in rr["ours"]],
                            "ort_rounds_ms": [round(x, 4) for x in rr["ort"]],
                            "ours_iterations": rr["ours_iters"], "ort_iterations": rr["ort_iters"]})
    print()
    print(f"Medians over {args.rounds} rounds of median latencies, batch 1; ours/ORT speed = ORT ms / "
          "ours ms (> 1: ours faster). The machine is shared and noisy: load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f} (1 min) on {os.cpu_count()} CPUs; "
          "treat small differences and 2-thread rows on a loaded 2-core machine with caution.")
    print(json.dumps({"dnnl_quant": version, "isa": isa, "onnxruntime": ort.__version__,
                      "cpus": os.cpu_count(), "rounds": args.rounds, "seconds": args.seconds,
                      "batch": 1, "ours_env": ours_env, "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in load_after], "results": results}))


if __name__ == "__main__":
    main()
