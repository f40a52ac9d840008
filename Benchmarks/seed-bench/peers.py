#!/usr/bin/env python3
"""The peer engines of `seed-bench` (onnxruntime and OpenVINO), driven over a pipe so that their
measurements interleave with ours in rounds.

  Benchmarks/seed-bench/peers.py serve            # JSON requests on stdin, one JSON answer per line on stdout
  Benchmarks/seed-bench/peers.py data OUT N SEED  # N image-like samples [N,3,224,224] f32 (.npy)
  Benchmarks/seed-bench/peers.py rss ENGINE PRECISION MODEL INPUT THREADS   # prints peak RSS (KiB)

Requests (`serve`), each a JSON object with "op":
  versions                          -> {"onnxruntime": v|null, "openvino": v|null, "nncf": v|null, "missing": {...}}
  quantize engine fp32 calib out batch -> {"path": out}: the peer's INT8 model of fp32 from the
                                       samples in calib (.npy [N,...], one sample per row), fed
                                       in batches of `batch` (default 1; the model's batch):
      onnxruntime: the recipe its docs give: opset 13 (onnx.version_converter), quant_pre_process,
                   quantize_static QDQ, u8 activations, s8 per-channel weights, MinMax calibration;
                   every Conv must read its weights through a DequantizeLinear (checked).
      openvino:    ov.Core().read_model(fp32) then nncf.quantize with its defaults
                   (subset_size = the number of samples), saved as OpenVINO IR (out.xml + .bin).
  load id engine model threads      -> {"id": id}: an onnxruntime session (CPU provider, all graph
                                       optimisations, intra_op_num_threads=threads, inter-op 1,
                                       sequential) or an OpenVINO model compiled for CPU
                                       (INFERENCE_NUM_THREADS=threads, NUM_STREAMS=1, latency hint,
                                       f32 inference precision for FP32 models).
  time id input seconds min_runs    -> {"ms": [...]}: per-run latencies of the loaded id on the
                                       input (.npy) for `seconds` (at least min_runs runs), after
                                       one untimed run.
  outputs id inputs out             -> {"path": out}: the first output of the id for each row of
                                       inputs (.npy [N,...]), one run per row, saved [N,...] .npy.
  rebatch fp32 batch out            -> {"path": out}: a copy of fp32 for batch `batch`: the input's
                                       and outputs' leading dimension set to it, and every constant
                                       Reshape shape that starts with 1 (paddle2onnx's flatten,
                                       [1, -1]) made to start with it.
  unload id                         -> {}
  quit
Errors answer {"error": "..."}. Standard library + numpy, onnx, onnxruntime, openvino, nncf from
the project's venv (Models/python_env.sh; this script installs Benchmarks/seed-bench/
requirements-peers.txt into it when `serve` starts and a package is missing, and reports what it
could not install).
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np  # noqa: E402

REQUIREMENTS = os.path.join(HERE, "requirements-peers.txt")


def log(msg):
    print(f"peers: {msg}", file=sys.stderr, flush=True)


def versions():
    out, missing = {}, {}
    for mod, dist in (("onnxruntime", "onnxruntime"), ("openvino", "openvino"), ("nncf", "nncf")):
        try:
            m = __import__(mod)
            out[dist] = getattr(m, "__version__", None) or getattr(m, "get_version", lambda: "?")()
        except Exception as e:  # noqa: BLE001  (an import that fails for any reason = not available)
            out[dist], missing[dist] = None, f"{type(e).__name__}: {e}"
    out["missing"] = missing
    return out


def install_missing():
    """pip-installs requirements-peers.txt into this venv when one of its packages is missing."""
    v = versions()
    if not v["missing"]:
        return
    log(f"installing the peers ({', '.join(v['missing'])}) from {os.path.relpath(REQUIREMENTS, ROOT)} ...")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", REQUIREMENTS], stdout=sys.stderr,
                       stderr=sys.stderr)
    if r.returncode != 0:
        log(f"pip install failed (exit {r.returncode}): the missing peers are skipped")


# --- data -----------------------------------------------------------------------------------

def image_like(n, seed, shape=(3, 224, 224)):
    """n image-like samples, as Models/paddle_export.py makes its inputs (smooth random field plus
    noise, each channel mean 0, std 1): float32 [n, *shape]."""
    import paddle_export  # Models/paddle_export.py (numpy only at import)
    return np.concatenate(paddle_export.images(seed, n, (1,) + tuple(shape))).astype(np.float32)


def save_atomic(path, array):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".npy")
    os.close(fd)
    np.save(tmp, array)
    os.replace(tmp, path)


# --- quantization ---------------------------------------------------------------------------

def input_name(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits][0]


def ort_int8(fp32, calib, out, batch=1):
    """onnxruntime's static QDQ model of fp32 (see the module docstring), written to out when it
    is missing. calib: an array [N,...] (one sample per row, fed `batch` rows at a time) or a
    list of samples [1,...]."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    name = input_name(fp32)
    samples = batches(calib, batch) if isinstance(calib, np.ndarray) else list(calib)
    if not os.path.exists(out):
        with tempfile.TemporaryDirectory() as tmp:
            op13, pre, q = (os.path.join(tmp, f) for f in ("op13.onnx", "pre.onnx", "q.onnx"))
            onnx.save(version_converter.convert_version(onnx.load(fp32), 13), op13)
            quant_pre_process(op13, pre, skip_symbolic_shape=True)

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.it = iter(samples)

                def get_next(self):
                    x = next(self.it, None)
                    return None if x is None else {name: x}

            quantize_static(pre, q, Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, per_channel=True)
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            os.replace(q, out)
    m = onnx.load(out)
    producers = {o: n for n in m.graph.node for o in n.output}
    bad = [n.name for n in m.graph.node
           if n.op_type == "Conv" and not (n.input[1] in producers and producers[n.input[1]].op_type == "DequantizeLinear")]
    if bad:
        raise RuntimeError(f"onnxruntime's INT8 model {out} has Convs without a weight DequantizeLinear: {bad[:5]}")
    return out


def batches(calib, batch):
    """Rows of calib in consecutive groups of `batch` (a last incomplete group is left out)."""
    return [calib[i:i + batch] for i in range(0, len(calib) - batch + 1, batch)]


def openvino_int8(fp32, calib, out, batch=1):
    """OpenVINO IR (out = NAME.xml) quantized by nncf.quantize with its defaults."""
    if not os.path.exists(out):
        import nncf
        import openvino as ov
        model = ov.Core().read_model(fp32)
        name = model.inputs[0].get_any_name()
        samples = batches(calib, batch)
        q = nncf.quantize(model, nncf.Dataset(samples, lambda x: {name: x}), subset_size=len(samples))
        with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
            ov.save_model(q, os.path.join(tmp, "m.xml"))
            os.replace(os.path.join(tmp, "m.bin"), out[:-4] + ".bin")
            os.replace(os.path.join(tmp, "m.xml"), out)
    return out


def rebatch(fp32, batch, out):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(fp32)
    for v in list(m.graph.input) + list(m.graph.output):
        v.type.tensor_type.shape.dim[0].Clear()
        v.type.tensor_type.shape.dim[0].dim_value = batch
    inits = {i.name: i for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Reshape" and n.input[1] in inits:
            shape = numpy_helper.to_array(inits[n.input[1]]).copy()
            if shape.ndim == 1 and len(shape) >= 1 and shape[0] == 1:
                shape[0] = batch
                inits[n.input[1]].CopyFrom(numpy_helper.from_array(shape, n.input[1]))
    del m.graph.value_info[:]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out)), suffix=".onnx")
    os.close(fd)
    onnx.save(m, tmp)
    os.replace(tmp, out)
    return out


# --- engines --------------------------------------------------------------------------------

class OrtRunner:
    def __init__(self, model, threads):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name

    def __call__(self, x):
        return self.session.run(None, {self.name: x})[0]


class OpenVINORunner:
    def __init__(self, model, threads):
        import openvino as ov
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = core.compile_model(core.read_model(model), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def __call__(self, x):
        self.request.infer({0: x})
        return self.request.get_output_tensor(0).data.copy()


ENGINES = {"onnxruntime": OrtRunner, "openvino": OpenVINORunner}


def peak_rss_kib():
    """VmHWM of /proc/self/status (this process image's peak; ru_maxrss would also count the
    interpreter that re-executed itself into the venv)."""
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])


def time_runs(run, x, seconds, min_runs):
    run(x)  # untimed
    ms, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(ms) < min_runs:
        t = time.perf_counter()
        run(x)
        ms.append((time.perf_counter() - t) * 1000)
    return ms


def serve():
    # Answers go to the original stdout; anything else written to fd 1 (nncf's progress bars,
    # C++ logs) goes to stderr, so that it cannot break the protocol.
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    install_missing()
    loaded = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            op = req["op"]
            if op == "quit":
                break
            if op == "versions":
                ans = versions()
            elif op == "quantize":
                calib = np.load(req["calib"])
                fn = {"onnxruntime": ort_int8, "openvino": openvino_int8}[req["engine"]]
                ans = {"path": fn(req["fp32"], calib, req["out"], int(req.get("batch", 1)))}
            elif op == "load":
                loaded[req["id"]] = ENGINES[req["engine"]](req["model"], int(req["threads"]))
                ans = {"id": req["id"]}
            elif op == "time":
                ans = {"ms": time_runs(loaded[req["id"]], np.load(req["input"]), float(req["seconds"]),
                                       int(req.get("min_runs", 3)))}
            elif op == "outputs":
                xs, run = np.load(req["inputs"]), loaded[req["id"]]
                save_atomic(req["out"], np.stack([np.asarray(run(xs[i:i + 1]))[0] for i in range(len(xs))]))
                ans = {"path": req["out"]}
            elif op == "rebatch":
                ans = {"path": rebatch(req["fp32"], int(req["batch"]), req["out"])}
            elif op == "unload":
                loaded.pop(req["id"], None)
                ans = {}
            else:
                ans = {"error": f"unknown op {op!r}"}
        except Exception as e:  # noqa: BLE001  (every failure is answered, the driver decides)
            ans = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(ans), file=proto, flush=True)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "serve":
        serve()
    elif cmd == "data" and len(sys.argv) == 5:
        save_atomic(sys.argv[2], image_like(int(sys.argv[3]), int(sys.argv[4])))
    elif cmd == "rss" and len(sys.argv) == 7:
        _, _, engine, _precision, model, inp, threads = sys.argv
        run, x = ENGINES[engine](model, int(threads)), np.load(inp)
        for _ in range(5):
            run(x)
        print(peak_rss_kib())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
