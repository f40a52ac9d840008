#!/usr/bin/env python3
"""ONNX models made by Paddle's own exporter (paddle2onnx), as a Paddle user has them: small
blocks for fusion tests and paddle.vision.models networks for benchmarks. Seeded random
weights, rescaled layer by layer so that activations and logits are meaningful.

  Models/paddle_export.py blocks [--force]          # resnet_block, mobilenetv2_block (1x3x64x64), conv3d_block (1x4x8x16x16)
  Models/paddle_export.py zoo [NAME ...] [--force]  # default: every zoo model (1x3x224x224)
  Models/paddle_export.py ssd [--force]             # ssd_mobilenet_v1 (1x3x300x300), see below
  Models/paddle_export.py list                      # the names and whether each is done

blocks -> $DNNL_QUANT_CACHE/paddle/blocks, zoo -> $DNNL_QUANT_CACHE/paddle/zoo, ssd ->
$DNNL_QUANT_CACHE/paddle/ssd (default cache ~/.cache/swift-dnnl-quantization). For each model NAME:
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

ssd: ssd_mobilenet_v1, an SSD-300 detector: the paddle.vision MobileNet-V1 body on 1x3x300x300
(input `image`), feature maps after its 11th (19x19, 512 ch) and 13th (10x10, 1024 ch)
depthwise-separable blocks plus 4 extra blocks (1x1 Conv-ReLU, 3x3/2 Conv-ReLU: 5x5, 3x3, 2x2,
1x1), and per map a 3x3 loc head (P*4 ch) and conf head (P*21 ch), transposed to NHWC and
reshaped/concatenated in the Paddle model to the outputs `loc` [1, N, 4] and `conf` [1, N, 21].
paddle2onnx 2.1 cannot export prior_box, so the script adds it to the exported graph: per map a
`PriorBox` node of domain `paddle` (opset_import paddle 1; inputs: the map the loc head reads,
found from the graph, and `image`; outputs Boxes, Variances [H, W, P, 4]; Paddle's attributes,
SSD_PRIORS), each Reshape'd to [-1, 4] and concatenated into the outputs `prior_boxes` and
`prior_variances` [N, 4]. Instead of NAME.output.npy it writes
  NAME.reference.npz  Paddle's outputs for NAME.input.npy: the model's loc and conf and
                      paddle.vision.ops.prior_box of every map, reshaped and concatenated alike
                      (keys loc, conf, prior_boxes, prior_variances)
and NAME.json records onnxruntime's loc/conf on the graph without the PriorBox branches (which
onnxruntime cannot run) against Paddle's.

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
from fetch import sha256  # noqa: E402  (Models/fetch.py: a file's sha256, printed with each model)

if __name__ == "__main__":
    use_venv.ensure()

import numpy as np  # noqa: E402

CACHE = use_venv.CACHE
OUT = {k: os.path.join(CACHE, "paddle", k) for k in ("blocks", "zoo", "ssd")}
BLOCKS = {"resnet_block": (1, 3, 64, 64), "mobilenetv2_block": (1, 3, 64, 64), "conv3d_block": (1, 4, 8, 16, 16)}
ZOO = {n: (1, 3, 224, 224) for n in ["resnet50", "resnet101", "mobilenet_v1", "mobilenet_v2", "vgg16", "vgg19"]}
SSD = {"ssd_mobilenet_v1": (1, 3, 300, 300)}
TABLES = {"blocks": BLOCKS, "zoo": ZOO, "ssd": SSD}
SSD_CLASSES = 21
# Paddle prior_box attributes of the six SSD feature maps (SSD-300: sizes 20% .. 95% of the
# image; explicit steps; Caffe's order: min, sqrt(min*max), then the other ratios).
SSD_PRIORS = [dict(min_sizes=[float(lo)], max_sizes=[float(hi)], aspect_ratios=ar, variance=[0.1, 0.1, 0.2, 0.2],
                   flip=True, clip=True, steps=[float(st), float(st)], offset=0.5, min_max_aspect_ratios_order=True)
              for lo, hi, ar, st in zip([60, 105, 150, 195, 240, 285], [105, 150, 195, 240, 285, 300],
                                        [[2.0]] + [[2.0, 3.0]] * 5, [16, 32, 64, 100, 150, 300])]
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
    p = {s: os.path.join(d, name + s) for s in (".onnx", ".input.npy", ".output.npy", ".reference.npz", ".json")}
    p["calib"] = os.path.join(d, name + ".calib")
    return p


def data_files(kind):
    """The files besides NAME.json and NAME.calib/ that a finished export has."""
    return (".onnx", ".input.npy", ".reference.npz" if kind == "ssd" else ".output.npy")


def done(kind, name):
    p = paths(kind, name)
    try:
        with open(p[".json"]) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return False
    return (info.get("key") == key() and all(os.path.exists(p[s]) for s in data_files(kind))
            and len([f for f in os.listdir(p["calib"]) if f.endswith(".npy")]) == N_CALIB
            if os.path.isdir(p["calib"]) else False)


def images(seed, n, shape):
    """n image-like samples [1,C,H,W]: a smooth random field (bilinear from 1/8 resolution)
    plus a little white noise, each channel normalised to mean 0, std 1. float32. A 5-D shape
    [1,C,D,H,W] (a clip of D frames) is made as C*D channels."""
    if len(shape) == 5:
        return [x.reshape(shape) for x in images(seed, n, (1, shape[1] * shape[2], shape[3], shape[4]))]
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

    class Conv3DBlock(nn.Layer):
        """3-D CNN block (Paddle's fused_conv3d): 3x3x3 Conv3D-BN3D-ReLU (4->8), then a residual
        unit 3x3x3 Conv3D-BN3D-ReLU, 3x3x3 Conv3D-BN3D, + its input, ReLU: [1,4,8,16,16] ->
        [1,8,8,16,16]."""

        def __init__(self):
            super().__init__()

            def conv_bn3d(cin, cout, act):
                layers = [nn.Conv3D(cin, cout, 3, padding=1, bias_attr=False), nn.BatchNorm3D(cout)]
                return nn.Sequential(*(layers + [nn.ReLU()] if act else layers))

            self.stem = conv_bn3d(4, 8, True)
            self.body = nn.Sequential(conv_bn3d(8, 8, True), conv_bn3d(8, 8, False))
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.stem(x)
            return self.relu(x + self.body(x))

    return {"resnet_block": ResNetBlock, "mobilenetv2_block": MobileNetV2Block, "conv3d_block": Conv3DBlock}


def priors_per_location(a):
    """As Paddle's prior_box: ratio 1, then each new aspect ratio (and 1/ratio with flip), per min
    size, plus one box per max size."""
    ratios = [1.0]
    for ar in a["aspect_ratios"]:
        if all(abs(ar - r) >= 1e-6 for r in ratios):
            ratios.append(ar)
            if a["flip"]:
                ratios.append(1.0 / ar)
    return len(ratios) * len(a["min_sizes"]) + len(a["max_sizes"])


def ssd_network(paddle):
    nn = paddle.nn

    class SSDMobileNetV1(nn.Layer):
        """SSD-300 on the paddle.vision MobileNet-V1 body: maps after dwsl[10] (conv5_5: 19x19,
        512 ch) and dwsl[12] (conv6: 10x10, 1024 ch) and 4 extra blocks (1x1 Conv-ReLU, 3x3/2
        Conv-ReLU: 5x5x512, 3x3x256, 2x2x256, 1x1x128); per map a 3x3 loc head (P*4) and conf
        head (P*21), NHWC, reshaped and concatenated: (loc [1, N, 4], conf [1, N, 21])."""

        FEATURES = (10, 12)

        def __init__(self):
            super().__init__()
            self.backbone = paddle.vision.models.mobilenet_v1(pretrained=False, num_classes=0, with_pool=False)
            chans, cin, extras = [512, 1024], 1024, []
            for mid, cout in [(256, 512), (128, 256), (128, 256), (64, 128)]:
                extras.append(nn.Sequential(nn.Conv2D(cin, mid, 1), nn.ReLU(),
                                            nn.Conv2D(mid, cout, 3, stride=2, padding=1), nn.ReLU()))
                chans.append(cout)
                cin = cout
            self.extras = nn.LayerList(extras)
            self.priors = [priors_per_location(a) for a in SSD_PRIORS]
            self.loc = nn.LayerList([nn.Conv2D(c, n * 4, 3, padding=1) for c, n in zip(chans, self.priors)])
            self.conf = nn.LayerList([nn.Conv2D(c, n * SSD_CLASSES, 3, padding=1) for c, n in zip(chans, self.priors)])

        def features(self, x):
            x = self.backbone.conv1(x)
            maps = []
            for i, block in enumerate(self.backbone.dwsl):
                x = block(x)
                if i in self.FEATURES:
                    maps.append(x)
            for extra in self.extras:
                x = extra(x)
                maps.append(x)
            return maps

        def forward(self, x):
            locs, confs = [], []
            for f, loc, conf in zip(self.features(x), self.loc, self.conf):
                locs.append(paddle.reshape(paddle.transpose(loc(f), [0, 2, 3, 1]), [0, -1, 4]))
                confs.append(paddle.reshape(paddle.transpose(conf(f), [0, 2, 3, 1]), [0, -1, SSD_CLASSES]))
            return paddle.concat(locs, axis=1), paddle.concat(confs, axis=1)

    return SSDMobileNetV1


def build(paddle, kind, name):
    paddle.seed(0)
    if kind == "blocks":
        model = block_networks(paddle)[name]()
    elif kind == "ssd":
        model = ssd_network(paddle)()
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
        axes = tuple(a for a in range(x.ndim) if a != 1)
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
        if isinstance(layer, (nn.Conv2D, nn.Conv3D, nn.Linear)):
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


def to_onnx(paddle, model, tmp, name, shape, input_name):
    """tmp/NAME.onnx: the export, as paddle.onnx.export does it (opset 13). paddle2onnx logs
    failures instead of raising: its warnings are collected, and a missing file or a skipped
    folding is an error. Returns the path."""
    import paddle2onnx.convert

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
            spec = [paddle.static.InputSpec(list(shape), "float32", input_name)]
            paddle.onnx.export(model, os.path.join(tmp, name), input_spec=spec, opset_version=13)
    finally:
        p2o_log.warning = orig_warning
    bad = [w for w in warnings if w.startswith("Fail")]
    if not os.path.exists(onnx_tmp) or bad:
        with open(log) as f:
            sys.stderr.write(f.read()[-4000:])
        raise RuntimeError(f"paddle2onnx export of {name} failed" + (f": {bad[0]}" if bad else ""))
    return onnx_tmp


def install(p, tmp, onnx_tmp, x, calib, data, info):
    """Into place, from the temporary folder tmp: data first, NAME.json (the completion mark)
    last. data: {suffix of paths(): function writing that file at a given path}."""
    cdir = os.path.join(tmp, "calib")
    os.makedirs(cdir)
    for i, c in enumerate(calib):
        np.save(os.path.join(cdir, f"calib_{i:02d}.npy"), c)
    staged = {".input.npy": os.path.join(tmp, "input.npy")}
    np.save(staged[".input.npy"], x)
    for suffix, write in data.items():
        staged[suffix] = os.path.join(tmp, "data" + suffix)
        write(staged[suffix])
    if os.path.exists(p[".json"]):
        os.remove(p[".json"])
    shutil.rmtree(p["calib"], ignore_errors=True)
    os.replace(cdir, p["calib"])
    for suffix, f in staged.items():
        os.replace(f, p[suffix])
    os.replace(onnx_tmp, p[".onnx"])
    with open(os.path.join(tmp, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    os.replace(os.path.join(tmp, "info.json"), p[".json"])


def export_one(kind, name, shape):
    import importlib.metadata as md

    import onnx
    import onnxruntime as ort
    import paddle

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

        onnx_tmp = to_onnx(paddle, model, tmp, name, shape, "x")
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

        install(p, tmp, onnx_tmp, x, calib, {".output.npy": lambda f: np.save(f, y)}, info)
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- SSD: prior_box nodes added to the exported graph ---------------------------------------

def rename_tensor(graph, old, new):
    for n in graph.node:
        n.input[:] = [new if t == old else t for t in n.input]
        n.output[:] = [new if t == old else t for t in n.output]
    for v in list(graph.output) + list(graph.value_info):
        if v.name == old:
            v.name = new


def head_inputs(graph, output):
    """The tensors the heads of a concatenated SSD output read: from the graph output back to its
    Concat (through Identity), and from each Concat input back through the reshaping ops and the
    bias Add (paddle2onnx writes a Conv's bias as Conv + Add of a constant) to the head's Conv;
    its data input is the feature map. Returns [(feature map, head Conv name)]."""
    producer = {t: n for n in graph.node for t in n.output}
    constant = {i.name for i in graph.initializer}
    constant |= {t for n in graph.node if n.op_type == "Constant" for t in n.output}

    def back(t, through):
        while True:
            n = producer.get(t)
            if n is None:
                raise RuntimeError(f"ssd: no node makes {t} (tracing the heads of {output})")
            if n.op_type not in through:
                return n
            data = [i for i in n.input if i and i not in constant] if n.op_type == "Add" else [n.input[0]]
            if len(data) != 1:
                return n
            t = data[0]

    concat = back(output, ("Identity",))
    if concat.op_type != "Concat":
        raise RuntimeError(f"ssd: {output} is made by {concat.op_type} {concat.name}, not Concat")
    through = ("Identity", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Add")
    heads = [back(t, through) for t in concat.input]
    bad = [f"{h.op_type} {h.name}" for h in heads if h.op_type != "Conv"]
    if bad:
        raise RuntimeError(f"ssd: the inputs of {output}'s Concat come from {bad}, not from head Convs")
    return [(h.input[0], h.name) for h in heads]


def add_prior_boxes(model, image, maps, total):
    """Per feature map a paddle.PriorBox node (Paddle's attributes, SSD_PRIORS), its Boxes and
    Variances [H, W, P, 4] Reshape'd to [-1, 4] and concatenated into the graph outputs
    prior_boxes and prior_variances [total, 4]."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.array([-1, 4], np.int64), "prior_box.shape"))
    flat = {"boxes": [], "variances": []}
    for i, (fmap, a) in enumerate(zip(maps, SSD_PRIORS)):
        outs = [f"prior_box_{i}.boxes", f"prior_box_{i}.variances"]
        g.node.append(helper.make_node(
            "PriorBox", [fmap, image], outs, name=f"prior_box_{i}", domain="paddle",
            min_sizes=[float(v) for v in a["min_sizes"]], max_sizes=[float(v) for v in a["max_sizes"]],
            aspect_ratios=[float(v) for v in a["aspect_ratios"]], variance=[float(v) for v in a["variance"]],
            flip=int(a["flip"]), clip=int(a["clip"]), steps=[float(v) for v in a["steps"]], offset=float(a["offset"]),
            min_max_aspect_ratios_order=int(a["min_max_aspect_ratios_order"])))
        for kind, t in zip(("boxes", "variances"), outs):
            g.node.append(helper.make_node("Reshape", [t, "prior_box.shape"], [t + ".2d"],
                                           name=f"prior_box_{i}.{kind}.reshape"))
            flat[kind].append(t + ".2d")
    for kind, out in (("boxes", "prior_boxes"), ("variances", "prior_variances")):
        g.node.append(helper.make_node("Concat", flat[kind], [out], name=out + ".concat", axis=0))
        g.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [total, 4]))
    model.opset_import.append(helper.make_opsetid("paddle", 1))


def without_prior_boxes(model, keep):
    """A copy of model with only what the outputs `keep` need (no PriorBox branch, no paddle domain)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    needed, nodes = set(keep), []
    for n in reversed(list(g.node)):
        if any(t in needed for t in n.output):
            nodes.append(n)
            needed.update(t for t in n.input if t)
    del g.node[:]
    g.node.extend(reversed(nodes))
    outs = [o for o in g.output if o.name in keep]
    del g.output[:]
    g.output.extend(outs)
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    opsets = [o for o in m.opset_import if o.domain != "paddle"]
    del m.opset_import[:]
    m.opset_import.extend(opsets)
    if any(n.domain == "paddle" for n in g.node):
        raise RuntimeError("ssd: loc/conf depend on a PriorBox node")
    return m


def export_ssd(kind, name, shape):
    import importlib.metadata as md

    import onnx
    import onnxruntime as ort
    import paddle

    t0 = time.time()
    p = paths(kind, name)
    os.makedirs(OUT[kind], exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=OUT[kind])
    try:
        model = build(paddle, kind, name)
        rescale(paddle, model, images(SEED_RESCALE, N_CALIB, shape))
        x = images(SEED_INPUT, 1, shape)[0]
        calib = images(SEED_CALIB, N_CALIB, shape)

        # Paddle's reference: the forward and paddle.vision.ops.prior_box of every feature map.
        with paddle.no_grad():
            xt = paddle.to_tensor(x)
            loc, conf = (t.numpy() for t in model(xt))
            fmaps = model.features(xt)
            boxes, variances, map_info = [], [], []
            for f, a, n in zip(fmaps, SSD_PRIORS, model.priors):
                b, v = paddle.vision.ops.prior_box(f, xt, min_sizes=a["min_sizes"], max_sizes=a["max_sizes"],
                                                   aspect_ratios=a["aspect_ratios"], variance=a["variance"],
                                                   flip=a["flip"], clip=a["clip"], steps=a["steps"], offset=a["offset"],
                                                   min_max_aspect_ratios_order=a["min_max_aspect_ratios_order"])
                if list(b.shape) != [f.shape[2], f.shape[3], n, 4]:
                    raise RuntimeError(f"ssd: prior_box gave {list(b.shape)} for map {list(f.shape)}; "
                                       f"the heads have {n} priors")
                boxes.append(b.numpy().reshape(-1, 4))
                variances.append(v.numpy().reshape(-1, 4))
                map_info.append({"shape": list(f.shape), "priors": n})
        reference = {"loc": loc, "conf": conf, "prior_boxes": np.concatenate(boxes),
                     "prior_variances": np.concatenate(variances)}
        total = reference["prior_boxes"].shape[0]
        if loc.shape != (1, total, 4) or conf.shape != (1, total, SSD_CLASSES):
            raise RuntimeError(f"ssd: loc {loc.shape}, conf {conf.shape} for {total} priors")

        onnx_tmp = to_onnx(paddle, model, tmp, name, shape, "image")
        m = onnx.load(onnx_tmp)
        inits = {i.name for i in m.graph.initializer}
        inputs = [i.name for i in m.graph.input if i.name not in inits]
        exported = [o.name for o in m.graph.output]
        if inputs != ["image"] or len(exported) != 2:
            raise RuntimeError(f"{name}: expected image -> loc, conf; got {inputs} -> {exported}")
        for old, new in zip(exported, ("loc", "conf")):  # paddle2onnx keeps the forward's order
            rename_tensor(m.graph, old, new)
        loc_heads, conf_heads = head_inputs(m.graph, "loc"), head_inputs(m.graph, "conf")
        maps = [t for t, _ in loc_heads]
        if [t for t, _ in conf_heads] != maps or len(maps) != len(SSD_PRIORS):
            raise RuntimeError(f"ssd: loc heads read {maps}, conf heads {[t for t, _ in conf_heads]}")
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                  for v in onnx.shape_inference.infer_shapes(m).graph.value_info}
        for t, mi in zip(maps, map_info):
            if shapes.get(t) != mi["shape"]:
                raise RuntimeError(f"ssd: feature map {t} has shape {shapes.get(t)} in the graph, "
                                   f"{mi['shape']} in Paddle")
        for mi, t, (_, lh), (_, ch) in zip(map_info, maps, loc_heads, conf_heads):
            mi.update(tensor=t, loc_head=lh, conf_head=ch)
        base = without_prior_boxes(m, ["loc", "conf"])  # before the PriorBox nodes: the same graph
        add_prior_boxes(m, "image", maps, total)
        onnx.checker.check_model(m)
        onnx.save(m, onnx_tmp)
        stripped = without_prior_boxes(m, ["loc", "conf"])
        if stripped.SerializeToString() != base.SerializeToString():
            raise RuntimeError("ssd: removing the PriorBox branches does not give back the exported graph")
        onnx.checker.check_model(stripped)
        counts = {}
        for n in m.graph.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1

        # onnxruntime (which has no PriorBox) on the graph without the prior-box branches.
        def run(level, xs):
            so = ort.SessionOptions()
            so.graph_optimization_level = level
            so.log_severity_level = 3
            sess = ort.InferenceSession(stripped.SerializeToString(), so, providers=["CPUExecutionProvider"])
            return [dict(zip(("loc", "conf"), sess.run(["loc", "conf"], {"image": v}))) for v in xs]

        y = run(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, [x])[0]
        y_plain = run(ort.GraphOptimizationLevel.ORT_DISABLE_ALL, [x])[0]
        ys_calib = run(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, calib)
        stats, diffs = {}, {}
        for k in ("loc", "conf"):
            v = y[k]
            if not np.isfinite(v).all():
                raise RuntimeError(f"{name}: non-finite {k}")
            std = float(v.std())
            if not 1e-2 < std < 1e2:
                raise RuntimeError(f"{name}: {k} std {std:.3g} is not meaningful (rescaling failed)")
            stats[k] = {"std": std, "min": float(v.min()), "max": float(v.max()),
                        "calib_std": [float(c[k].std()) for c in ys_calib]}
            diffs[k] = {"paddle_vs_ort": float(np.abs(reference[k] - v).max()),
                        "ort_all_vs_disable": float(np.abs(y_plain[k] - v).max())}
            if diffs[k]["paddle_vs_ort"] > 1e-3 * (float(v.max()) - float(v.min())):
                raise RuntimeError(f"{name}: onnxruntime's {k} differs from Paddle's by "
                                   f"{diffs[k]['paddle_vs_ort']:.3g}")
        info = {
            "name": name, "kind": kind, "key": key(),
            "input": {"name": "image", "shape": list(shape)},
            "outputs": {k: list(v.shape) for k, v in reference.items()},
            "num_classes": SSD_CLASSES, "total_priors": int(total),
            "feature_maps": [dict(mi, attributes=a) for mi, a in zip(map_info, SSD_PRIORS)],
            "opset": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
            "op_counts": dict(sorted(counts.items())),
            "nodes": len(m.graph.node),
            "output_stats": stats,
            "max_abs_diff": diffs,
            "seeds": {"weights": 0, "input": SEED_INPUT, "calib": SEED_CALIB, "rescale": SEED_RESCALE,
                      "batchnorm": SEED_BN},
            "versions": {pkg: md.version(pkg) for pkg in ("paddlepaddle", "paddle2onnx", "polygraphy", "onnx",
                                                          "onnxruntime", "numpy")},
            "export_seconds": round(time.time() - t0, 1),
        }
        install(p, tmp, onnx_tmp, x, calib, {".reference.npz": lambda f: np.savez(f, **reference)}, info)
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def describe(info):
    c = info["op_counts"]
    s = info["output_stats"]
    ops = ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
    if info["kind"] == "ssd":
        outs = ", ".join(f"{k} {v}" for k, v in info["outputs"].items())
        d = info["max_abs_diff"]
        return (f"{info['name']}: {info['nodes']} nodes ({ops}); outputs {outs}; loc std {s['loc']['std']:.3g}, "
                f"conf std {s['conf']['std']:.3g}; |paddle - ort| loc {d['loc']['paddle_vs_ort']:.2g}, "
                f"conf {d['conf']['paddle_vs_ort']:.2g}")
    extra = (f", top-1 {s['top1']} p={s['top1_prob']:.3f} (calibration samples: "
             f"{len(set(s['calib_top1']))} distinct of {len(s['calib_top1'])})") if "top1" in s else ""
    return (f"{info['name']}: {info['nodes']} nodes ({ops}); output {info['output']['name']} "
            f"{info['output']['shape']} std {s['std']:.3g} range [{s['min']:.3g}, {s['max']:.3g}]{extra}; "
            f"|paddle - ort| {info['max_abs_diff']['paddle_vs_ort']:.2g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["blocks", "zoo", "ssd", "list"])
    ap.add_argument("names", nargs="*", help="zoo: models to export (default: all)")
    ap.add_argument("--force", action="store_true", help="export again even when done")
    a = ap.parse_args()
    if a.what == "list":
        for kind, table in TABLES.items():
            for name in table:
                print(f"{kind} {name} {'done' if done(kind, name) else 'missing'} {paths(kind, name)['.onnx']}")
        return
    table = TABLES[a.what]
    names = a.names or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit(f"paddle_export: unknown {a.what} model(s) {unknown}; known: {list(table)}")
    todo = [n for n in names if a.force or not done(a.what, n)]
    for n in names:
        if n not in todo:
            with open(paths(a.what, n)[".json"]) as f:
                print(describe(json.load(f)) + f" (done) sha256 {sha256(paths(a.what, n)['.onnx'])}")
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
            info = (export_ssd if a.what == "ssd" else export_one)(a.what, n, table[n])
        except Exception as e:  # noqa: BLE001
            sys.exit(f"paddle_export: {a.what} {n}: {e}")
        print(describe(info) + f" ({info['export_seconds']} s) -> {paths(a.what, n)['.onnx']} "
              f"sha256 {sha256(paths(a.what, n)['.onnx'])}", flush=True)


if __name__ == "__main__":
    main()
