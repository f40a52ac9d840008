#!/usr/bin/env python3
"""ONNX models made by Paddle's own exporter (paddle2onnx), as a Paddle user has them: small
blocks for fusion tests and paddle.vision.models networks for benchmarks. Seeded random
weights, rescaled layer by layer so that activations and logits are meaningful.

  Models/paddle_export.py blocks [--force]          # resnet_block, mobilenetv2_block (1x3x64x64)
  Models/paddle_export.py zoo [NAME ...] [--force]  # default: every zoo model (1x3x224x224)
  Models/paddle_export.py list                      # the names and whether each is done

blocks -> $DNNL_QUANT_CACHE/paddle/blocks, zoo -> $DNNL_QUANT_CACHE/paddle/zoo
(default cache ~/.cache/swift-dnnl-quantization). For each model NAME:
  NAME.onnx         paddle.onnx.export (paddle2onnx, opset 13; its default Polygraphy constant
                    folding, with Polygraphy's pip auto-install turned off)
  NAME.input.npy    one input sample (seed 0), float32 [1,3,H,W]
  NAME.output.npy   onnxruntime's FP32 output for it (CPU, default optimisations; the model's
                    single output, named in NAME.json)
  NAME.calib/       8 calibration samples, calib_00.npy ... calib_07.npy (seed 1)
  NAME.json         input/output names and shapes, op-type counts, versions, output statistics,
                    Paddle-vs-onnxruntime and onnxruntime optimised-vs-plain differences
Inputs are image-like (smooth random fields plus noise, each channel ~ N(0, 1)), as normalised
images are. A model whose NAME.json matches this script and Models/requirements-paddle.txt is
skipped (fast: Paddle is not even imported); --force redoes it. Prints the op-type counts.

Weights: paddle.seed(0) initialisation, then one calibration pass (seed 2, 8 samples; neither
the input nor the calibration samples) in which every Conv/Linear is scaled so that its output
has unit standard deviation, and every BatchNorm gets the mean and variance of its actual input
and random gamma ~ U(0.5, 1.5), beta ~ N(0, 0.25) (seed 3): raw initialisation gives logits
from 1e-17 (MobileNet) to 2e6 (ResNet-101). Zoo classifiers: the last Linear's bias removes the
mean logits of that batch (so the top class depends on the input) and its scale makes the
logits' std 3.

Runs in the project's venv (Models/python_env.sh) with Models/requirements-paddle.txt added.
"""
import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402

if __name__ == "__main__":
    use_venv.ensure()

import numpy as np  # noqa: E402

CACHE = use_venv.CACHE
OUT = {"blocks": os.path.join(CACHE, "paddle", "blocks"), "zoo": os.path.join(CACHE, "paddle", "zoo")}
BLOCKS = {"resnet_block": (1, 3, 64, 64), "mobilenetv2_block": (1, 3, 64, 64)}
ZOO = {n: (1, 3, 224, 224) for n in ["resnet50", "resnet101", "mobilenet_v1", "mobilenet_v2", "vgg16", "vgg19"]}
N_CALIB = 8
SEED_INPUT, SEED_CALIB, SEED_RESCALE, SEED_BN = 0, 1, 2, 3
LOGIT_STD = 3.0


def key():
    """What the outputs depend on: this script and the Paddle requirements."""
    h = hashlib.sha256()
    for f in (os.path.abspath(__file__), os.path.join(HERE, "requirements-paddle.txt")):
        with open(f, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def paths(kind, name):
    d = OUT[kind]
    p = {s: os.path.join(d, name + s) for s in (".onnx", ".input.npy", ".output.npy", ".json")}
    p["calib"] = os.path.join(d, name + ".calib")
    return p


def done(kind, name):
    p = paths(kind, name)
    try:
        with open(p[".json"]) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return False
    return (info.get("key") == key() and all(os.path.exists(p[s]) for s in (".onnx", ".input.npy", ".output.npy"))
            and len([f for f in os.listdir(p["calib"]) if f.endswith(".npy")]) == N_CALIB
            if os.path.isdir(p["calib"]) else False)


def images(seed, n, shape):
    """n image-like samples [1,C,H,W]: a smooth random field (bilinear from 1/8 resolution)
    plus a little white noise, each channel normalised to mean 0, std 1. float32."""
    rng = np.random.default_rng(seed)
    _, c, h, w = shape

    def interp(n_out, n_in):  # [n_out, n_in] linear interpolation matrix
        pos = np.linspace(0, n_in - 1, n_out)
        m = np.zeros((n_out, n_in))
        lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
        frac = pos - lo
        m[np.arange(n_out), lo] = 1 - frac
        m[np.arange(n_out), lo + 1] = frac
        return m

    mh, mw = interp(h, h // 8 + 2), interp(w, w // 8 + 2)
    out = []
    for _ in range(n):
        coarse = rng.normal(size=(c, h // 8 + 2, w // 8 + 2))
        x = np.einsum("hi,cij,wj->chw", mh, coarse, mw) + 0.3 * rng.normal(size=(c, h, w))
        x = (x - x.mean(axis=(1, 2), keepdims=True)) / x.std(axis=(1, 2), keepdims=True)
        out.append(x[None].astype(np.float32))
    return out


# --- Paddle networks ------------------------------------------------------------------------

def block_networks(paddle):
    nn = paddle.nn

    def conv_bn(cin, cout, k, stride=1, groups=1, act=None):
        layers = [nn.Conv2D(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias_attr=False),
                  nn.BatchNorm2D(cout)]
        if act is not None:
            layers.append(act())
        return nn.Sequential(*layers)

    class Bottleneck(nn.Layer):
        """1x1 Conv-BN-ReLU, 3x3 Conv-BN-ReLU, 1x1 Conv-BN, + shortcut, ReLU (paddle.vision's)."""

        def __init__(self, cin, width, cout, stride):
            super().__init__()
            self.conv1 = conv_bn(cin, width, 1, act=nn.ReLU)
            self.conv2 = conv_bn(width, width, 3, stride=stride, act=nn.ReLU)
            self.conv3 = conv_bn(width, cout, 1)
            self.downsample = conv_bn(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else None
            self.relu = nn.ReLU()

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(self.conv3(self.conv2(self.conv1(x))) + identity)

    class ResNetBlock(nn.Layer):
        """ResNet stem (7x7/2 Conv-BN-ReLU, 3x3/2 max pool) + a projecting bottleneck (stride 2)
        + an identity bottleneck: [1,3,64,64] -> [1,32,8,8]."""

        def __init__(self):
            super().__init__()
            self.stem = conv_bn(3, 16, 7, stride=2, act=nn.ReLU)
            self.pool = nn.MaxPool2D(3, stride=2, padding=1)
            self.block1 = Bottleneck(16, 8, 32, stride=2)
            self.block2 = Bottleneck(32, 8, 32, stride=1)

        def forward(self, x):
            return self.block2(self.block1(self.pool(self.stem(x))))

    class InvertedResidual(nn.Layer):
        """1x1 Conv-BN-ReLU6 (expand), 3x3 depthwise Conv-BN-ReLU6, 1x1 linear Conv-BN,
        + input when stride 1 and channels match (paddle.vision's MobileNetV2 unit)."""

        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            self.conv = nn.Sequential(conv_bn(cin, hidden, 1, act=nn.ReLU6),
                                      conv_bn(hidden, hidden, 3, stride=stride, groups=hidden, act=nn.ReLU6),
                                      conv_bn(hidden, cout, 1))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2Block(nn.Layer):
        """MobileNet-V2 stem (3x3/2 Conv-BN-ReLU6) + 3 inverted residuals (16->24 stride 2,
        24->24, 24->24; expansion 6; the last two with a residual Add): [1,3,64,64] -> [1,24,16,16]."""

        def __init__(self):
            super().__init__()
            self.stem = conv_bn(3, 16, 3, stride=2, act=nn.ReLU6)
            self.blocks = nn.Sequential(InvertedResidual(16, 24, 2, 6), InvertedResidual(24, 24, 1, 6),
                                        InvertedResidual(24, 24, 1, 6))

        def forward(self, x):
            return self.blocks(self.stem(x))

    return {"resnet_block": ResNetBlock, "mobilenetv2_block": MobileNetV2Block}


def build(paddle, kind, name):
    paddle.seed(0)
    if kind == "blocks":
        model = block_networks(paddle)[name]()
    else:
        model = getattr(paddle.vision.models, name)(pretrained=False)
    model.eval()
    return model


def rescale(paddle, model, batch, logits_std=None):
    """One pass over `batch` that scales every Conv/Linear to unit output std and sets every
    BatchNorm's statistics to those of its actual input (hooks run in execution order, so each
    layer sees its already rescaled inputs). With logits_std (classifiers, whose last layer is
    the output), the last layer's bias also removes the batch's mean logits (else one class
    wins for every input: random features share a large input-independent part) and its scale
    gives the logits that std."""
    nn = paddle.nn
    rng = np.random.default_rng(SEED_BN)
    order, handles = [], []

    def bn_pre(layer, inputs):
        x = inputs[0].numpy().astype(np.float64)
        axes = (0, 2, 3) if x.ndim == 4 else (0,)
        layer._mean.set_value(paddle.to_tensor(x.mean(axis=axes).astype(np.float32)))
        layer._variance.set_value(paddle.to_tensor(x.var(axis=axes).astype(np.float32)))
        c = x.shape[1]
        layer.weight.set_value(paddle.to_tensor(rng.uniform(0.5, 1.5, c).astype(np.float32)))
        layer.bias.set_value(paddle.to_tensor(rng.normal(0.0, 0.25, c).astype(np.float32)))

    def lin_post(layer, inputs, output):
        s = float(output.numpy().astype(np.float64).std())
        if not np.isfinite(s) or s == 0:
            raise RuntimeError(f"rescale: {layer.full_name()} output std {s}")
        layer.weight.set_value(layer.weight / s)
        if layer.bias is not None:
            layer.bias.set_value(layer.bias / s)
        order.append(layer)
        return output / s

    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Linear)):
            handles.append(layer.register_forward_post_hook(lin_post))
        elif hasattr(layer, "_mean") and hasattr(layer, "_variance"):
            handles.append(layer.register_forward_pre_hook(bn_pre))
    with paddle.no_grad():
        model(paddle.to_tensor(np.concatenate(batch)))
    for h in handles:
        h.remove()
    if logits_std is None:
        return
    last = order[-1]
    with paddle.no_grad():
        y = model(paddle.to_tensor(np.concatenate(batch))).numpy().astype(np.float64)
    mean = y.mean(axis=0)
    k = logits_std / (y - mean).std()
    last.bias.set_value(paddle.to_tensor(((last.bias.numpy() - mean) * k).astype(np.float32)))
    last.weight.set_value(last.weight * k)


@contextlib.contextmanager
def captured(log_path):
    """Sends this process's stdout/stderr (Python and C++) to log_path while inside."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def export_one(kind, name, shape):
    import importlib.metadata as md

    import onnx
    import onnxruntime as ort
    import paddle
    import paddle2onnx
    import paddle2onnx.convert

    t0 = time.time()
    p = paths(kind, name)
    os.makedirs(OUT[kind], exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=OUT[kind])
    try:
        model = build(paddle, kind, name)
        rescale(paddle, model, images(SEED_RESCALE, N_CALIB, shape), LOGIT_STD if kind == "zoo" else None)
        x = images(SEED_INPUT, 1, shape)[0]
        calib = images(SEED_CALIB, N_CALIB, shape)
        with paddle.no_grad():
            y_paddle = model(paddle.to_tensor(x)).numpy()

        # The export, as paddle.onnx.export does it. paddle2onnx logs failures instead of raising:
        # its warnings are collected, and a missing file or a skipped folding is an error.
        warnings = []
        p2o_log = paddle2onnx.convert.logging
        orig_warning = p2o_log.warning

        def warning(msg, *a, **k):
            warnings.append(str(msg))
            return orig_warning(msg, *a, **k)

        p2o_log.warning = warning
        onnx_tmp = os.path.join(tmp, name + ".onnx")
        log = os.path.join(tmp, "export.log")
        try:
            with captured(log):
                spec = [paddle.static.InputSpec(list(shape), "float32", "x")]
                paddle.onnx.export(model, os.path.join(tmp, name), input_spec=spec, opset_version=13)
        finally:
            p2o_log.warning = orig_warning
        bad = [w for w in warnings if w.startswith("Fail")]
        if not os.path.exists(onnx_tmp) or bad:
            with open(log) as f:
                sys.stderr.write(f.read()[-4000:])
            raise RuntimeError(f"paddle2onnx export of {name} failed" + (f": {bad[0]}" if bad else ""))

        m = onnx.load(onnx_tmp)
        onnx.checker.check_model(m)
        counts = {}
        for n in m.graph.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
        inits = {i.name for i in m.graph.initializer}
        inputs = [i.name for i in m.graph.input if i.name not in inits]
        outputs = [o.name for o in m.graph.output]
        if len(inputs) != 1 or len(outputs) != 1:
            raise RuntimeError(f"{name}: expected one input and one output, got {inputs} -> {outputs}")

        def run(level, xs):
            so = ort.SessionOptions()
            so.graph_optimization_level = level
            so.log_severity_level = 3
            s = ort.InferenceSession(onnx_tmp, so, providers=["CPUExecutionProvider"])
            return [s.run(None, {inputs[0]: v})[0] for v in xs]

        y = run(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, [x])[0]
        y_plain = run(ort.GraphOptimizationLevel.ORT_DISABLE_ALL, [x])[0]
        ys_calib = run(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, calib)
        if not np.isfinite(y).all():
            raise RuntimeError(f"{name}: non-finite output")
        std = float(y.std())
        if not 1e-2 < std < 1e2:
            raise RuntimeError(f"{name}: output std {std:.3g} is not meaningful (rescaling failed)")
        info = {
            "name": name, "kind": kind, "key": key(),
            "input": {"name": inputs[0], "shape": list(shape)},
            "output": {"name": outputs[0], "shape": list(y.shape)},
            "opset": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
            "op_counts": dict(sorted(counts.items())),
            "nodes": len(m.graph.node),
            "output_stats": {"std": std, "min": float(y.min()), "max": float(y.max()),
                             "calib_std": [float(v.std()) for v in ys_calib]},
            "max_abs_diff": {"paddle_vs_ort": float(np.abs(y_paddle - y).max()),
                             "ort_all_vs_disable": float(np.abs(y_plain - y).max())},
            "seeds": {"weights": 0, "input": SEED_INPUT, "calib": SEED_CALIB, "rescale": SEED_RESCALE,
                      "batchnorm": SEED_BN},
            "versions": {pkg: md.version(pkg) for pkg in ("paddlepaddle", "paddle2onnx", "polygraphy", "onnx",
                                                          "onnxruntime", "numpy")},
            "export_seconds": round(time.time() - t0, 1),
        }
        if kind == "zoo":
            info["output_stats"]["top1"] = int(y.argmax())
            e = np.exp(y - y.max())
            info["output_stats"]["top1_prob"] = float(e.max() / e.sum())
            info["output_stats"]["calib_top1"] = [int(v.argmax()) for v in ys_calib]

        # Into place: data first, NAME.json (the completion mark) last.
        cdir = os.path.join(tmp, "calib")
        os.makedirs(cdir)
        for i, c in enumerate(calib):
            np.save(os.path.join(cdir, f"calib_{i:02d}.npy"), c)
        np.save(os.path.join(tmp, "input.npy"), x)
        np.save(os.path.join(tmp, "output.npy"), y)
        if os.path.exists(p[".json"]):
            os.remove(p[".json"])
        shutil.rmtree(p["calib"], ignore_errors=True)
        os.replace(cdir, p["calib"])
        os.replace(os.path.join(tmp, "input.npy"), p[".input.npy"])
        os.replace(os.path.join(tmp, "output.npy"), p[".output.npy"])
        os.replace(onnx_tmp, p[".onnx"])
        with open(os.path.join(tmp, "info.json"), "w") as f:
            json.dump(info, f, indent=1)
        os.replace(os.path.join(tmp, "info.json"), p[".json"])
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def describe(info):
    c = info["op_counts"]
    s = info["output_stats"]
    ops = ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
    extra = (f", top-1 {s['top1']} p={s['top1_prob']:.3f} (calibration samples: "
             f"{len(set(s['calib_top1']))} distinct of {len(s['calib_top1'])})") if "top1" in s else ""
    return (f"{info['name']}: {info['nodes']} nodes ({ops}); output {info['output']['name']} "
            f"{info['output']['shape']} std {s['std']:.3g} range [{s['min']:.3g}, {s['max']:.3g}]{extra}; "
            f"|paddle - ort| {info['max_abs_diff']['paddle_vs_ort']:.2g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["blocks", "zoo", "list"])
    ap.add_argument("names", nargs="*", help="zoo: models to export (default: all)")
    ap.add_argument("--force", action="store_true", help="export again even when done")
    a = ap.parse_args()
    if a.what == "list":
        for kind, table in (("blocks", BLOCKS), ("zoo", ZOO)):
            for name in table:
                print(f"{kind} {name} {'done' if done(kind, name) else 'missing'} {paths(kind, name)['.onnx']}")
        return
    table = BLOCKS if a.what == "blocks" else ZOO
    names = a.names or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit(f"paddle_export: unknown {a.what} model(s) {unknown}; known: {list(table)}")
    todo = [n for n in names if a.force or not done(a.what, n)]
    for n in names:
        if n not in todo:
            with open(paths(a.what, n)[".json"]) as f:
                print(describe(json.load(f)) + " (done)")
    if not todo:
        return
    use_venv.ensure("paddle")
    # Polygraphy (paddle2onnx's constant folding) would pip-install what it misses at run time
    # (paddle2onnx sets POLYGRAPHY_AUTOINSTALL_DEPS=1): its config is read once, here, with 0;
    # what it needs is pinned in Models/requirements-paddle.txt.
    os.environ["POLYGRAPHY_AUTOINSTALL_DEPS"] = "0"
    import polygraphy.config
    polygraphy.config.AUTOINSTALL_DEPS = False
    import warnings
    warnings.filterwarnings("ignore", message="No ccache found")
    for n in todo:
        try:
            info = export_one(a.what, n, table[n])
        except Exception as e:  # noqa: BLE001
            sys.exit(f"paddle_export: {a.what} {n}: {e}")
        print(describe(info) + f" ({info['export_seconds']} s) -> {paths(a.what, n)['.onnx']}", flush=True)


if __name__ == "__main__":
    main()
