#!/usr/bin/env python3
"""Structured, seeded, time-bounded fuzzer of the dnnl-quant command line.

Every case takes a small valid seed model (built here with onnx.helper, or a copy of a real
model from the cache), applies one to three structured mutations to its protobuf (or to its
bytes, its external data, its input files), writes it with inputs to a temporary folder and
runs `dnnl-quant run` (sometimes `inspect` or `quantize`) under a timeout and memory limit.

Outcomes:
  clean-error      exit 1/64 with a line starting "Error:"
  ok-matches-ort   exit 0, and onnxruntime accepts the model and gives the same outputs
                   (inspect/quantize: onnxruntime accepts the model, and the quantized one)
  ok-ort-refuses   exit 0 on a model (or inputs) onnxruntime refuses: "accepted what
                   onnxruntime refuses", counted, not a finding
  MISMATCH         exit 0 with outputs that differ from onnxruntime's (or a quantized model
                   onnxruntime cannot load although it loads the input model)
  CRASH            a signal, an exit status outside {0, 1, 64}, or a failure without "Error:"
  HANG             still running at the timeout

Findings (MISMATCH/CRASH/HANG) are deduplicated by a signature (signal + Swift "Fatal error"
file:line + the top frames of the project's own code in the backtrace); the first case of each
signature is minimized and saved as OUT/<signature-slug>/ (cmd.txt, w/model.onnx, w/inputs/,
stderr.txt, meta.json). `--replay DIR` reruns such folders (Tests/fuzz/regressions holds the
checked-in ones); with `--check` the exit status is 1 when any of them still fails.

Usage:
  python3 Tests/fuzz/fuzz.py --seconds 300 --seed 1 --jobs 2 --check
  python3 Tests/fuzz/fuzz.py --replay Tests/fuzz/regressions --check
  python3 Tests/fuzz/fuzz.py --seed 1 --case 17 --keep      # one case, folder kept
"""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "Models"))
import use_venv  # noqa: E402

if __name__ == "__main__":
    use_venv.ensure()

import argparse  # noqa: E402
import collections  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

CACHE = os.environ.get("DNNL_QUANT_CACHE") or os.path.expanduser("~/.cache/swift-dnnl-quantization")
DEFAULT_BINARY = os.path.join(REPO, ".build", "release", "dnnl-quant")
DEFAULT_OUT = os.path.join(CACHE, "fuzz", "findings")
MEMORY_LIMIT = 6 << 30       # address space of each child (dnnl-quant, onnxruntime worker)
FILE_LIMIT = 512 << 20       # largest file a child may write
FINDING_OUTCOMES = ("MISMATCH", "CRASH", "HANG")
OUTCOMES = ("clean-error", "ok-matches-ort", "ok-ort-refuses", "known-difference", "MISMATCH", "CRASH", "HANG")
# Mismatch signatures that are known, documented differences (counted as "known-difference", not
# findings). Only MISMATCH outcomes of a run that exited 0 are ever reclassified, and only when
# what differs is NaN/Inf placement or values: a CRASH, HANG, missing output, shape or dtype
# difference stays a finding.
KNOWN_DIFFERENCES = {
    "MISMATCH non-finite propagation (NaN/Inf/huge inputs, weights or attributes)":
        "oneDNN's CPU kernels do not propagate NaN/Inf the IEEE way ONNX and onnxruntime do: "
        "ReLU, max pooling and clip are max/min based (NaN -> 0 or the bound), sigmoid/tanh/exp use "
        "clamped polynomial approximations (NaN -> finite), and values near FLT_MAX overflow "
        "differently with another accumulation order and blocking (inf vs 3e38, inf * 0). "
        "Making every primitive NaN-exact would need a Swift path for every op; models with "
        "non-finite inputs or weights are out of scope (the quantizer refuses NaN/Inf weights "
        "and skips non-finite calibration samples).",
}
KNOWN_DIFFERENCES["MISMATCH extreme finite values (denormal constants, Q/DQ scales <= 1e-38 or >= 1e30)"] = (
    "denormal constants are flushed to zero by oneDNN's JIT kernels (FTZ/DAZ: x / 1e-40 is inf, "
    "onnxruntime gives 1e38), and Q/DQ scales at the ends of the float range overflow differently: "
    "oneDNN reorders saturate f32 results to +-FLT_MAX where onnxruntime gives +-inf (and then NaN), "
    "and quantize multiplies by 1/scale (inf for 1e-38 and below) where onnxruntime divides. "
    "Such scales come from no calibration; non-finite, zero and negative scales are refused.")
KNOWN_DIFFERENCE_WHATS = ("NaN", "Inf", "values")

# --------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------


class Builder:
    """A small graph under construction: f32 inputs with fixed feeds, initializers, nodes."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.feeds = {}
        self.count = 0

    def inp(self, name, shape):
        self.inputs.append(oh.make_tensor_value_info(name, T.FLOAT, shape))
        self.feeds[name] = self.rng.standard_normal(shape).astype(np.float32)
        return name

    def const(self, arr, name=None):
        name = name or f"c{len(self.inits)}"
        self.inits.append(nh.from_array(np.asarray(arr), name))
        return name

    def w(self, *shape, scale=0.5):
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32))

    def op(self, op_type, inputs, nout=1, **attrs):
        name = f"{op_type.lower()}{self.count}"
        self.count += 1
        outs = [f"{name}_y{j}" for j in range(nout)]
        self.nodes.append(oh.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if nout == 1 else outs

    def out(self, *names):
        for n in names:
            self.outputs.append(oh.make_tensor_value_info(n, T.FLOAT, None))

    def build(self, opset=17):
        g = oh.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)], producer_name="fuzz-seed")
        m.ir_version = 8
        return m, self.feeds


def q_params(b, scale, zp, dtype):
    return b.const(np.array(scale, np.float32)), b.const(np.array(zp, dtype))


def seed_conv_relu(b):
    x = b.inp("x", [1, 3, 8, 8])
    c = b.op("Conv", [x, b.w(4, 3, 3, 3), b.w(4)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b.out(b.op("Relu", [c]))


def seed_conv_bn_pool(b):
    x = b.inp("x", [1, 3, 10, 10])
    c = b.op("Conv", [x, b.w(6, 3, 3, 3)], strides=[2, 2], pads=[1, 1, 1, 1])
    bn = b.op("BatchNormalization", [c, b.const(np.linspace(0.5, 1.5, 6, dtype=np.float32)), b.w(6),
                                     b.w(6), b.const(np.linspace(0.5, 2, 6, dtype=np.float32))], epsilon=1e-5)
    r = b.op("Relu", [bn])
    b.out(b.op("MaxPool", [r], kernel_shape=[2, 2], strides=[2, 2]))


def seed_residual(b):
    x = b.inp("x", [1, 3, 6, 6])
    c = b.op("Conv", [x, b.w(3, 3, 3, 3), b.w(3)], pads=[1, 1, 1, 1])
    a = b.op("Add", [c, x])
    r = b.op("Relu", [a])
    b.out(b.op("AveragePool", [r], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0))


def seed_depthwise(b):
    x = b.inp("x", [1, 4, 7, 7])
    c = b.op("Conv", [x, b.w(4, 1, 3, 3), b.w(4)], group=4, dilations=[2, 2], pads=[2, 2, 2, 2])
    cl = b.op("Clip", [c, b.const(np.array(0, np.float32)), b.const(np.array(6, np.float32))])
    gp = b.op("GlobalAveragePool", [cl])
    f = b.op("Flatten", [gp], axis=1)
    b.out(b.op("Gemm", [f, b.w(5, 4), b.w(5)], transB=1))


def seed_matmul(b):
    x = b.inp("x", [2, 5, 8])
    mm = b.op("MatMul", [x, b.w(8, 6)])
    a = b.op("Add", [mm, b.w(6)])
    s = b.op("Sigmoid", [a])
    b.out(b.op("Softmax", [s], axis=1))


def seed_gemm(b):
    x = b.inp("x", [3, 10])
    g = b.op("Gemm", [x, b.w(10, 4), b.w(4)], alpha=0.5, beta=2.0)
    b.out(b.op("Relu", [g]))


def seed_concat_reshape(b):
    x = b.inp("x", [1, 2, 4, 4])
    y = b.inp("y", [1, 3, 4, 4])
    c = b.op("Concat", [x, y], axis=1)
    r = b.op("Reshape", [c, b.const(np.array([1, 5, 16], np.int64))])
    t = b.op("Transpose", [r], perm=[0, 2, 1])
    b.out(b.op("Flatten", [t], axis=1))


def seed_slice_resize(b):
    x = b.inp("x", [1, 2, 8, 8])
    s = b.op("Slice", [x, b.const(np.array([1, 1], np.int64)), b.const(np.array([7, 7], np.int64)),
                       b.const(np.array([2, 3], np.int64)), b.const(np.array([1, 2], np.int64))])
    r1 = b.op("Resize", [s, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="linear")
    r2 = b.op("Resize", [x, "", "", b.const(np.array([1, 2, 5, 12], np.int64))], mode="nearest",
              coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    b.out(r1, r2)


def seed_lstm(b):
    x = b.inp("x", [5, 2, 4])
    h = 6
    y, yh, yc = b.op("LSTM", [x, b.w(1, 4 * h, 4), b.w(1, 4 * h, h), b.w(1, 8 * h)], nout=3, hidden_size=h)
    b.out(y, yh)


def seed_lstm_bidir(b):
    x = b.inp("x", [3, 1, 5])
    h = 4
    y, yh, yc = b.op("LSTM", [x, b.w(2, 4 * h, 5), b.w(2, 4 * h, h)], nout=3, hidden_size=h,
                     direction="bidirectional")
    b.out(y, yc)


def seed_gru(b):
    x = b.inp("x", [4, 1, 3])
    h = 5
    y, yh = b.op("GRU", [x, b.w(2, 3 * h, 3), b.w(2, 3 * h, h), b.w(2, 6 * h)], nout=2, hidden_size=h,
                 direction="bidirectional", linear_before_reset=1)
    b.out(y, yh)


def seed_gather_split(b):
    x = b.inp("x", [6, 4])
    g = b.op("Gather", [x, b.const(np.array([0, 2, 5, 1], np.int64))], axis=0)
    s1, s2 = b.op("Split", [g, b.const(np.array([1, 3], np.int64))], nout=2, axis=1)
    b.out(b.op("Sigmoid", [s1]), b.op("Relu", [s2]))


def seed_qdq_conv(b):
    x = b.inp("x", [1, 3, 6, 6])
    s, z = q_params(b, 0.02, 128, np.uint8)
    q = b.op("QuantizeLinear", [x, s, z])
    dq = b.op("DequantizeLinear", [q, s, z])
    wq = b.const(b.rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8))
    ws = b.const(np.array([0.004, 0.005, 0.003, 0.006], np.float32))
    wz = b.const(np.zeros(4, np.int8))
    wdq = b.op("DequantizeLinear", [wq, ws, wz], axis=0)
    c = b.op("Conv", [dq, wdq, b.w(4)], pads=[1, 1, 1, 1])
    s2, z2 = q_params(b, 0.05, 128, np.uint8)
    q2 = b.op("QuantizeLinear", [c, s2, z2])
    dq2 = b.op("DequantizeLinear", [q2, s2, z2])
    b.out(b.op("Relu", [dq2]))


def seed_qdq_matmul(b):
    x = b.inp("x", [2, 8])
    s, z = q_params(b, 0.03, 0, np.int8)
    dq = b.op("DequantizeLinear", [b.op("QuantizeLinear", [x, s, z]), s, z])
    wq = b.const(b.rng.integers(-120, 120, (8, 5)).astype(np.int8))
    wdq = b.op("DequantizeLinear", [wq, b.const(np.array(0.01, np.float32)), b.const(np.array(0, np.int8))])
    mm = b.op("MatMul", [dq, wdq])
    a = b.op("Add", [mm, b.w(5)])
    s2, z2 = q_params(b, 0.04, 0, np.int8)
    b.out(b.op("DequantizeLinear", [b.op("QuantizeLinear", [a, s2, z2]), s2, z2]))


def seed_pools(b):
    x = b.inp("x", [1, 2, 9, 9])
    m1 = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    m2 = b.op("AveragePool", [x], kernel_shape=[2, 3], strides=[1, 2], pads=[0, 1, 1, 0])
    m3 = b.op("MaxPool", [x], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 0, 0])
    m4 = b.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")
    b.out(m1, m2, m3, m4)


def seed_softmax_chain(b):
    x = b.inp("x", [2, 3, 5])
    s = b.op("Softmax", [x], axis=2)
    m = b.op("Mul", [s, b.w(5)])
    d = b.op("Div", [b.op("Sub", [m, b.w(3, 1)]), b.const(np.array(2.0, np.float32))])
    b.out(b.op("Transpose", [d], perm=[2, 0, 1]))


def seed_convtranspose(b):
    x = b.inp("x", [1, 3, 4, 4])
    c = b.op("ConvTranspose", [x, b.w(3, 2, 3, 3), b.w(2)], strides=[2, 2], pads=[1, 1, 1, 1],
             output_padding=[1, 1])
    b.out(b.op("Sigmoid", [c]))


def seed_broadcast(b):
    x = b.inp("x", [1, 3, 4, 1])
    y = b.inp("y", [1, 1, 1, 5])
    a = b.op("Add", [x, y])
    mx = b.op("Max", [a, b.const(np.array(0.1, np.float32))])
    b.out(b.op("Mul", [mx, b.w(5)]))


def seed_conv1d_flatten(b):
    x = b.inp("x", [2, 3, 12])
    c = b.op("Conv", [x, b.w(5, 3, 3)], strides=[2], pads=[1, 1])
    p = b.op("MaxPool", [c], kernel_shape=[2], strides=[2])
    f = b.op("Flatten", [p], axis=1)
    b.out(b.op("Clip", [f, b.const(np.array(-0.5, np.float32)), b.const(np.array(0.5, np.float32))]))


SYNTHETIC = {f.__name__[5:]: f for f in [
    seed_conv_relu, seed_conv_bn_pool, seed_residual, seed_depthwise, seed_matmul, seed_gemm,
    seed_concat_reshape, seed_slice_resize, seed_lstm, seed_lstm_bidir, seed_gru, seed_gather_split,
    seed_qdq_conv, seed_qdq_matmul, seed_pools, seed_softmax_chain, seed_convtranspose, seed_broadcast,
    seed_conv1d_flatten]}

# Real models: (path relative to CACHE, feeds maker, weight). Big ones are left out (slow).
REAL = [
    ("paddle/blocks/resnet_block.onnx", "npy:paddle/blocks/resnet_block.input.npy", 4),
    ("paddle/blocks/mobilenetv2_block.onnx", "npy:paddle/blocks/mobilenetv2_block.input.npy", 3),
    ("models/silero_vad/silero_vad_16k_sequence.onnx", "silero", 2),
    ("models/ppocr_v4/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x:1,3,48,192", 1),
]


class Seed:
    def __init__(self, name, model_bytes, feeds, real):
        self.name, self.model_bytes, self.feeds, self.real = name, model_bytes, feeds, real
        self.size = len(model_bytes)

    def model(self):
        m = onnx.ModelProto()
        m.ParseFromString(self.model_bytes)
        return m


def load_seeds(use_real=True):
    seeds = []
    for i, (name, fn) in enumerate(SYNTHETIC.items()):
        b = Builder(name, 1000 + i)
        fn(b)
        m, feeds = b.build()
        seeds.append(Seed(name, m.SerializeToString(), feeds, False))
    if use_real:
        rng = np.random.default_rng(7)
        for rel, feed_spec, weight in REAL:
            path = os.path.join(CACHE, rel)
            if not os.path.isfile(path):
                continue
            try:
                data = open(path, "rb").read()
                m = onnx.ModelProto()
                m.ParseFromString(data)
                names = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
                if feed_spec.startswith("npy:"):
                    feeds = {names[0]: np.load(os.path.join(CACHE, feed_spec[4:])).astype(np.float32)}
                elif feed_spec == "silero":
                    feeds = {"input": rng.standard_normal((2, 576)).astype(np.float32) * 0.1,
                             "h": np.zeros((1, 1, 128), np.float32), "c": np.zeros((1, 1, 128), np.float32)}
                else:
                    n, dims = feed_spec.split(":")
                    feeds = {n: rng.random([int(d) for d in dims.split(",")]).astype(np.float32)}
            except Exception as e:  # a damaged cache file is no seed
                print(f"note: seed {rel} skipped ({e})", file=sys.stderr)
                continue
            s = Seed(os.path.splitext(os.path.basename(rel))[0], data, feeds, True)
            s.weight = weight
            seeds.append(s)
    return seeds


# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

EXTREME_INTS = [0, -1, -2, -7, 1, 2, 3, 5, 1000, 65535, 2**31 - 1, 2**31, 2**32, 2**32 + 1,
                2**40, 2**62, 2**63 - 1, -2**31, -2**63, -(2**63 - 1)]
EXTREME_FLOATS = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, 1e-45, 1e-38, 1e30,
                  3.4e38, -3.4e38, 0.5]
ELEM_TYPES = [0, T.FLOAT, T.UINT8, T.INT8, T.UINT16, T.INT16, T.INT32, T.INT64, T.STRING, T.BOOL,
              T.FLOAT16, T.DOUBLE, T.UINT32, T.UINT64, T.COMPLEX64, T.BFLOAT16, T.FLOAT8E4M3FN, 99]
NP_OF = {T.FLOAT: np.float32, T.UINT8: np.uint8, T.INT8: np.int8, T.UINT16: np.uint16, T.INT16: np.int16,
         T.INT32: np.int32, T.INT64: np.int64, T.BOOL: np.bool_, T.FLOAT16: np.float16, T.DOUBLE: np.float64,
         T.UINT32: np.uint32, T.UINT64: np.uint64}
ENUMS = {
    "mode": ["nearest", "linear", "cubic", "bilinear", "NEAREST", "", "bogus", "constant", "reflect"],
    "coordinate_transformation_mode": ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel",
                                       "tf_crop_and_resize", "half_pixel_symmetric", "bogus", ""],
    "nearest_mode": ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "bogus", ""],
    "direction": ["forward", "reverse", "bidirectional", "sideways", "", "Forward"],
    "auto_pad": ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "SAME", "bogus", ""],
    "activations": None,  # lists, see below
    "keep_aspect_ratio_policy": ["stretch", "not_larger", "not_smaller", "bogus"],
}
ACTIVATIONS = ["Sigmoid", "Tanh", "Relu", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
               "HardSigmoid", "Elu", "Softsign", "Softplus", "Bogus", ""]
# Attributes worth adding where the node lacks them.
KNOWN_ATTRS = {
    "Conv": ["strides", "pads", "dilations", "group", "kernel_shape", "auto_pad"],
    "ConvTranspose": ["strides", "pads", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "auto_pad"],
    "MaxPool": ["strides", "pads", "dilations", "kernel_shape", "ceil_mode", "storage_order", "auto_pad"],
    "AveragePool": ["strides", "pads", "dilations", "kernel_shape", "ceil_mode", "count_include_pad", "auto_pad"],
    "LSTM": ["hidden_size", "direction", "activations", "clip", "input_forget", "layout", "activation_alpha"],
    "GRU": ["hidden_size", "direction", "activations", "clip", "linear_before_reset", "layout"],
    "Resize": ["mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside",
               "extrapolation_value", "antialias", "axes", "keep_aspect_ratio_policy"],
    "Softmax": ["axis"], "Concat": ["axis"], "Gather": ["axis"], "Split": ["axis", "num_outputs"],
    "Flatten": ["axis"], "Transpose": ["perm"], "Gemm": ["alpha", "beta", "transA", "transB"],
    "BatchNormalization": ["epsilon", "momentum", "training_mode"],
    "QuantizeLinear": ["axis", "saturate", "block_size"], "DequantizeLinear": ["axis", "block_size"],
    "Reshape": ["allowzero"], "Clip": ["min", "max"], "Relu": ["alpha"], "Add": ["broadcast", "axis"],
}
INT_ATTRS = {"group", "axis", "hidden_size", "ceil_mode", "count_include_pad", "storage_order", "transA",
             "transB", "linear_before_reset", "input_forget", "layout", "training_mode", "saturate",
             "block_size", "exclude_outside", "antialias", "allowzero", "num_outputs", "broadcast"}
FLOAT_ATTRS = {"alpha", "beta", "epsilon", "momentum", "clip", "cubic_coeff_a", "extrapolation_value",
               "min", "max"}


class Case:
    """One fuzz case: the model, its feeds, the files around it and how to run it."""

    def __init__(self, seed, r, index):
        self.seed, self.r, self.index = seed, r, index
        self.model = seed.model()
        self.feeds = {k: v.copy() for k, v in seed.feeds.items()}
        self.feed_override = {}     # name -> array (fed as is, not derived from the declaration)
        self.files = {}             # path relative to w/ (may start with ../) -> bytes
        self.symlinks = {}          # path relative to w/ -> target
        self.byte_ops = []          # functions bytes -> bytes, applied to the serialized model
        self.kinds = []
        self.details = []
        self.command = "run"
        self.method = "minmax"

    def note(self, kind, detail):
        self.kinds.append(kind)
        self.details.append(f"{kind}: {detail}")


def pick(r, seq):
    seq = list(seq)
    return seq[r.randrange(len(seq))] if seq else None


def init_names(m):
    return {t.name for t in m.graph.initializer}


def graph_inputs(m):
    inits = init_names(m)
    return [i for i in m.graph.input if i.name not in inits]


def all_tensors(m):
    names = set(init_names(m)) | {i.name for i in m.graph.input}
    for n in m.graph.node:
        names.update(o for o in n.output if o)
    return sorted(names)


def float_tensors(m):
    """Tensor names produced by nodes or graph inputs of float type (best effort)."""
    names = [i.name for i in graph_inputs(m) if i.type.tensor_type.elem_type == T.FLOAT]
    for n in m.graph.node:
        if n.op_type not in ("Shape", "QuantizeLinear", "Gather", "Constant", "Cast", "ArgMax") and n.output:
            names.append(n.output[0])
    return [n for n in names if n]


def tensor_array(t):
    try:
        return nh.to_array(t)
    except Exception:
        return None


def mut_input_dim(c):
    ins = graph_inputs(c.model)
    if not ins:
        return None
    i = pick(c.r, ins)
    tt = i.type.tensor_type
    v = c.r.random()
    if v < 0.15 or not tt.shape.dim:
        tt.shape.dim.add().dim_value = pick(c.r, [1, 2, 3])
        return f"{i.name}: extra dim"
    d = pick(c.r, tt.shape.dim)
    if v < 0.25:
        del tt.shape.dim[-1]
        return f"{i.name}: rank - 1"
    if v < 0.3:
        tt.ClearField("shape")
        return f"{i.name}: no shape"
    if v < 0.38:
        d.dim_param = pick(c.r, ["N", "batch", "", "?"])
        return f"{i.name}: dim_param {d.dim_param!r}"
    d.dim_value = pick(c.r, EXTREME_INTS)
    return f"{i.name}: dim -> {d.dim_value}"


def mut_input_dtype(c):
    ins = graph_inputs(c.model)
    if not ins:
        return None
    i = pick(c.r, ins)
    i.type.tensor_type.elem_type = pick(c.r, ELEM_TYPES)
    if c.r.random() < 0.3 and i.name in c.feeds:  # and feed the original f32 array anyway
        c.feed_override[i.name] = c.feeds[i.name]
    return f"{i.name}: elem_type {i.type.tensor_type.elem_type}"


def pick_init(c, min_size=0, pred=None):
    cands = [t for t in c.model.graph.initializer
             if (pred is None or pred(t)) and int(np.prod(t.dims)) >= min_size]
    return pick(c.r, cands)


def mut_init_dims(c):
    t = pick_init(c)
    if t is None:
        return None
    v = c.r.random()
    arr = tensor_array(t)
    if v < 0.35 and arr is not None and arr.size > 1:
        # a consistent but wrong shape: same values, other dims
        n = arr.size
        shapes = [[n], [1, n], [n, 1], list(reversed(arr.shape)), [1] + list(arr.shape), list(arr.shape[1:]) + [arr.shape[0]]]
        shape = pick(c.r, [s for s in shapes if list(s) != list(arr.shape)] or [[n]])
        new = nh.from_array(arr.reshape(shape), t.name)
        t.CopyFrom(new)
        return f"{t.name}: reshaped {list(arr.shape)} -> {shape}"
    if not t.dims:
        t.dims.append(pick(c.r, EXTREME_INTS))
        return f"{t.name}: scalar given dim {t.dims[0]}"
    k = c.r.randrange(len(t.dims))
    t.dims[k] = pick(c.r, EXTREME_INTS)
    return f"{t.name}: dims[{k}] -> {t.dims[k]} (data unchanged)"


def mut_init_dtype(c):
    t = pick_init(c)
    if t is None:
        return None
    arr = tensor_array(t)
    new_type = pick(c.r, ELEM_TYPES)
    if c.r.random() < 0.5 and arr is not None and new_type in NP_OF:
        with np.errstate(all="ignore"):
            t.CopyFrom(nh.from_array(arr.astype(NP_OF[new_type]), t.name))
        return f"{t.name}: converted to elem_type {new_type}"
    t.data_type = new_type
    return f"{t.name}: data_type -> {new_type} (data unchanged)"


def mut_raw_data(c):
    t = pick_init(c)
    if t is None:
        return None
    arr = tensor_array(t)
    if arr is None:
        return None
    raw = arr.tobytes()
    t.CopyFrom(nh.from_array(arr, t.name))
    v = c.r.random()
    if v < 0.3:
        t.raw_data = raw[:max(0, len(raw) - pick(c.r, [1, 2, 4, len(raw)]))]
        return f"{t.name}: raw_data shortened to {len(t.raw_data)}/{len(raw)}"
    if v < 0.5:
        t.raw_data = raw + bytes(pick(c.r, [1, 3, 4, 4096]))
        return f"{t.name}: raw_data longer ({len(t.raw_data)}/{len(raw)})"
    if v < 0.65 and t.data_type == T.FLOAT:
        t.float_data.extend([1.0] * pick(c.r, [1, 3]))
        return f"{t.name}: both raw_data and float_data"
    if v < 0.8 and t.data_type == T.FLOAT:
        t.ClearField("raw_data")
        vals = arr.reshape(-1).tolist()
        t.float_data.extend(vals[:-1] if vals and c.r.random() < 0.5 else vals + [0.5])
        return f"{t.name}: float_data count {len(t.float_data)} for {arr.size} elements"
    t.ClearField("raw_data")
    return f"{t.name}: no data at all"


def mut_empty_tensor(c):
    t = pick_init(c)
    if t is None:
        return None
    dt = t.data_type
    arr = tensor_array(t)
    shape = [0] if arr is None or arr.ndim == 0 or c.r.random() < 0.4 else [0] + list(arr.shape[1:])
    npdt = NP_OF.get(dt, np.float32)
    t.CopyFrom(nh.from_array(np.zeros(shape, npdt), t.name))
    return f"{t.name}: empty {shape}"


def mut_extreme_values(c):
    t = pick_init(c, pred=lambda t: t.data_type == T.FLOAT)
    if t is None:
        return None
    arr = tensor_array(t)
    if arr is None or arr.size == 0:
        return None
    arr = arr.copy().reshape(-1)
    val = pick(c.r, [float("nan"), float("inf"), float("-inf"), 3e38, -3e38, 1e-40, 0.0, 1e20])
    if c.r.random() < 0.5:
        arr[:] = val
        where = "all"
    else:
        k = c.r.randrange(arr.size)
        arr[k] = val
        where = f"[{k}]"
    t.CopyFrom(nh.from_array(arr.reshape([d for d in t.dims]), t.name))
    return f"{t.name}{where} = {val}"


def mut_int_values(c):
    t = pick_init(c, pred=lambda t: t.data_type in (T.INT64, T.INT32))
    if t is None:
        return None
    arr = tensor_array(t)
    if arr is None:
        return None
    arr = arr.copy().reshape(-1)
    v = c.r.random()
    if v < 0.2:
        n = pick(c.r, [0, 1, arr.size + 1, max(arr.size - 1, 0)])
        vals = np.array([pick(c.r, EXTREME_INTS) for _ in range(n)], np.int64)
        t.CopyFrom(nh.from_array(vals.astype(arr.dtype, copy=False) if arr.dtype == np.int64 else vals.astype(np.int64), t.name))
        return f"{t.name}: {n} values {vals.tolist()}"
    if arr.size == 0:
        return None
    k = c.r.randrange(arr.size)
    val = pick(c.r, EXTREME_INTS)
    if arr.dtype == np.int32:
        val = int(np.int64(val).astype(np.int32))
    arr[k] = val
    t.CopyFrom(nh.from_array(arr.reshape([d for d in t.dims]), t.name))
    return f"{t.name}[{k}] = {val}"


def mut_duplicate(c):
    g = c.model.graph
    v = c.r.random()
    if v < 0.2 and len(g.node) >= 2:
        a, b = c.r.sample(range(len(g.node)), 2)
        g.node[b].name = g.node[a].name
        return f"node {b} renamed to {g.node[a].name!r}"
    if v < 0.35 and g.input:
        d = copy.deepcopy(pick(c.r, g.input))
        if c.r.random() < 0.5:
            d.type.tensor_type.elem_type = T.INT64
        g.input.append(d)
        return f"graph input {d.name!r} twice"
    if v < 0.5 and g.output:
        g.output.append(copy.deepcopy(pick(c.r, g.output)))
        return f"graph output {g.output[-1].name!r} twice"
    if v < 0.65 and g.initializer:
        t = copy.deepcopy(pick(c.r, g.initializer))
        arr = tensor_array(t)
        if arr is not None and arr.dtype.kind == "f":
            t.CopyFrom(nh.from_array(np.full([max(1, x) for x in arr.shape[:1]] if arr.ndim else [], 2.0, arr.dtype), t.name))
        g.initializer.append(t)
        return f"initializer {t.name!r} twice"
    if v < 0.8 and len(g.node) >= 2:
        a, b = sorted(c.r.sample(range(len(g.node)), 2))
        if g.node[a].output and g.node[b].output:
            g.node[b].output[0] = g.node[a].output[0]
            return f"nodes {a} and {b} both write {g.node[a].output[0]!r}"
        return None
    if g.initializer and g.node:
        n = pick(c.r, g.node)
        if n.output:
            n.output[0] = pick(c.r, g.initializer).name
            return f"node {n.name!r} writes initializer {n.output[0]!r}"
    if g.node and graph_inputs(c.model):
        n = pick(c.r, g.node)
        if n.output:
            n.output[0] = pick(c.r, graph_inputs(c.model)).name
            return f"node {n.name!r} writes graph input {n.output[0]!r}"
    return None


def mut_cycle(c):
    g = c.model.graph
    if not g.node:
        return None
    i = c.r.randrange(len(g.node))
    j = c.r.randrange(i, len(g.node))
    src, dst = g.node[j], g.node[i]
    if not src.output or not dst.input:
        return None
    k = c.r.randrange(len(dst.input))
    dst.input[k] = src.output[0]
    return f"node {i} ({dst.op_type}) input {k} <- output of node {j}"


def mut_missing_input(c):
    g = c.model.graph
    nodes = [n for n in g.node if n.input]
    if not nodes:
        return None
    n = pick(c.r, nodes)
    k = c.r.randrange(len(n.input))
    v = c.r.random()
    if v < 0.35:
        n.input[k] = "no_such_tensor"
        return f"{n.name} input {k} -> missing"
    if v < 0.7:
        n.input[k] = ""
        return f"{n.name} input {k} -> ''"
    if v < 0.85:
        del n.input[c.r.randrange(len(n.input)):]
        return f"{n.name} inputs truncated to {len(n.input)}"
    if n.output:
        n.output[c.r.randrange(len(n.output))] = ""
        return f"{n.name} output -> ''"
    return None


def mut_outputs(c):
    g = c.model.graph
    v = c.r.random()
    if v < 0.25:
        del g.output[:]
        return "no graph outputs"
    if v < 0.45 and len(g.output) > 1:
        del g.output[c.r.randrange(len(g.output))]
        return "one graph output removed"
    if v < 0.6 and g.output:
        g.output[0].name = pick(c.r, ["no_such_tensor", ""])
        return f"output renamed to {g.output[0].name!r}"
    if v < 0.75 and g.input:
        g.output.append(oh.make_tensor_value_info(pick(c.r, g.input).name, T.FLOAT, None))
        return "graph input is also a graph output"
    if v < 0.85 and g.initializer:
        t = pick(c.r, g.initializer)
        g.output.append(oh.make_tensor_value_info(t.name, t.data_type, None))
        return "initializer is a graph output"
    ts = [n.output[0] for n in g.node if n.output and n.output[0]]
    if ts:
        g.output.append(oh.make_tensor_value_info(pick(c.r, ts), T.FLOAT, None))
        return "intermediate tensor as output"
    return None


def absurd_attr_value(c, name, node):
    if name in ENUMS:
        if name == "activations":
            n = pick(c.r, [0, 1, 2, 3, 6, 7])
            return [pick(c.r, ACTIVATIONS) for _ in range(n)]
        return pick(c.r, ENUMS[name])
    if name in FLOAT_ATTRS:
        return pick(c.r, EXTREME_FLOATS)
    if name in INT_ATTRS:
        return pick(c.r, EXTREME_INTS)
    # lists of ints (strides, pads, dilations, kernel_shape, perm, axes, output_padding, ...)
    n = pick(c.r, [0, 1, 2, 3, 4, 6, 8])
    if c.r.random() < 0.5:
        return [pick(c.r, EXTREME_INTS) for _ in range(n)]
    base = pick(c.r, EXTREME_INTS)
    return [base] * n


def mut_attr_absurd(c):
    nodes = [n for n in c.model.graph.node if n.attribute or n.op_type in KNOWN_ATTRS]
    n = pick(c.r, nodes)
    if n is None:
        return None
    names = [a.name for a in n.attribute] + KNOWN_ATTRS.get(n.op_type, [])
    name = pick(c.r, names)
    existing = [a for a in n.attribute if a.name == name]
    if existing and existing[0].type == onnx.AttributeProto.TENSOR:
        return None
    value = absurd_attr_value(c, name, n)
    try:
        attr = oh.make_attribute(name, value)
    except Exception:
        return None
    for a in existing:
        n.attribute.remove(a)
    n.attribute.append(attr)
    return f"{n.op_type} {n.name}.{name} = {value!r}"[:200]


def mut_attr_type(c):
    nodes = [n for n in c.model.graph.node if n.attribute]
    n = pick(c.r, nodes)
    if n is None:
        return None
    a = pick(c.r, n.attribute)
    if a.type == onnx.AttributeProto.TENSOR:
        return None
    v = c.r.random()
    new = pick(c.r, [1.5, 3, "3", [1.0, 2.0], [2, 2], ["a"], b"\xff\xfe"])
    n.attribute.remove(a)
    if v < 0.15:
        return f"{n.op_type}.{a.name} removed"
    attr = oh.make_attribute(a.name, new)
    n.attribute.append(attr)
    if v < 0.25:
        n.attribute.append(oh.make_attribute(a.name, 1))
        return f"{n.op_type}.{a.name} twice"
    return f"{n.op_type}.{a.name} as {type(new).__name__} {new!r}"


def q_nodes(m):
    return [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def insert_qdq(c, scale=None, zp=None, zp_type=None):
    """Inserts x -> QuantizeLinear -> DequantizeLinear before a consumer of a float tensor."""
    g = c.model.graph
    cands = [(n, k) for n in g.node for k, i in enumerate(n.input[:1]) if i in set(float_tensors(c.model))]
    if not cands:
        return None
    n, k = pick(c.r, cands)
    x = n.input[k]
    zp_type = zp_type or pick(c.r, [np.uint8, np.int8])
    s_name, z_name = f"fz_s{len(g.initializer)}", f"fz_z{len(g.initializer)}"
    g.initializer.append(nh.from_array(np.array(scale if scale is not None else pick(c.r, [0.01, 0.05, 0.1]), np.float32), s_name))
    g.initializer.append(nh.from_array(np.array(zp if zp is not None else (128 if zp_type == np.uint8 else 0), zp_type), z_name))
    q = oh.make_node("QuantizeLinear", [x, s_name, z_name], [x + "_fzq"], name=f"fz_q_{x}")
    dq = oh.make_node("DequantizeLinear", [x + "_fzq", s_name, z_name], [x + "_fzdq"], name=f"fz_dq_{x}")
    n.input[k] = x + "_fzdq"
    idx = list(g.node).index(n)
    g.node.insert(idx, dq)
    g.node.insert(idx, q)
    return f"Q/DQ inserted before {n.name} on {x}"


def mut_insert_qdq(c):
    return insert_qdq(c)


def mut_qdq_params(c):
    qs = q_nodes(c.model)
    if not qs:
        if insert_qdq(c) is None:
            return None
        qs = q_nodes(c.model)
    n = pick(c.r, qs)
    g = c.model.graph
    v = c.r.random()
    inits = {t.name: t for t in g.initializer}
    if v < 0.4 and len(n.input) > 1:
        name = f"fz_scale_{c.r.randrange(1 << 30)}"
        val = pick(c.r, EXTREME_FLOATS + ["empty", "vec3", "f16", "f64", "2d"])
        if val == "empty":
            arr = np.zeros([0], np.float32)
        elif val == "vec3":
            arr = np.array([0.1, 0.2, 0.3], np.float32)
        elif val == "2d":
            arr = np.full([2, 2], 0.1, np.float32)
        elif val == "f16":
            arr = np.array(0.05, np.float16)
        elif val == "f64":
            arr = np.array(0.05, np.float64)
        else:
            old = tensor_array(inits[n.input[1]]) if n.input[1] in inits else None
            arr = np.full(old.shape if old is not None else [], val, np.float32)
        g.initializer.append(nh.from_array(arr, name))
        n.input[1] = name
        return f"{n.op_type} {n.name} scale = {val}"
    if v < 0.8:
        name = f"fz_zp_{c.r.randrange(1 << 30)}"
        val = pick(c.r, ["u8_255", "i8_-128", "i32", "i16", "f32", "empty", "vec3", "missing", "u16", "i4", "e4m3"])
        arrs = {"u8_255": np.array(255, np.uint8), "i8_-128": np.array(-128, np.int8), "i32": np.array(7, np.int32),
                "i16": np.array(-3, np.int16), "f32": np.array(1.0, np.float32), "empty": np.zeros([0], np.uint8),
                "vec3": np.array([1, 2, 3], np.uint8), "u16": np.array(300, np.uint16)}
        if val == "missing":
            del n.input[2:]
            return f"{n.op_type} {n.name} without zero point"
        if val in ("i4", "e4m3"):
            t = oh.make_tensor(name, T.INT4 if val == "i4" else T.FLOAT8E4M3FN, [], [1])
            g.initializer.append(t)
        else:
            g.initializer.append(nh.from_array(arrs[val], name))
        while len(n.input) < 3:
            n.input.append("")
        n.input[2] = name
        return f"{n.op_type} {n.name} zero point = {val}"
    n.attribute.append(oh.make_attribute("axis", pick(c.r, [-5, -1, 1, 3, 4, 2**31])))
    return f"{n.op_type} {n.name} axis = {n.attribute[-1].i}"


def mut_opset(c):
    v = c.r.random()
    m = c.model
    if v < 0.55:
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = pick(c.r, [1, 5, 6, 7, 9, 10, 11, 12, 99, 0, -1, 2**63 - 1, 10000])
                return f"default opset {o.version}"
    if v < 0.7:
        del m.opset_import[:]
        return "no opset_import"
    if v < 0.85:
        m.opset_import.append(oh.make_opsetid("", pick(c.r, [7, 13, 99])))
        return "default opset declared twice"
    m.ir_version = pick(c.r, [0, 1, 2, 3, 4, 99, -1, 2**62])
    return f"ir_version {m.ir_version}"


def mut_domain(c):
    g = c.model.graph
    if not g.node:
        return None
    n = pick(c.r, g.node)
    n.domain = pick(c.r, ["com.unknown", "ai.onnx.ml", "com.microsoft", "ai.onnx", "ai.onnx.preview.training",
                          "com.dnnl.fused", ""])
    if c.r.random() < 0.5 and n.domain:
        c.model.opset_import.append(oh.make_opsetid(n.domain, pick(c.r, [1, 3])))
    if c.r.random() < 0.3:
        n.op_type = pick(c.r, ["Bogus", "If", "Loop", "NonMaxSuppression", "Conv", "conv", "", "FusedConv",
                               "QConv", "QMatMul", "QAdd", "QLinearConv", "MatMulInteger", "Einsum"])
    return f"{n.name}: domain {n.domain!r} op {n.op_type!r}"


def mut_unsupported_node(c):
    g = c.model.graph
    ts = float_tensors(c.model)
    if not ts:
        return None
    x = pick(c.r, ts)
    v = c.r.random()
    if v < 0.35:
        sub = oh.make_graph([oh.make_node("Identity", [x], ["sub_y"])], "sub", [],
                            [oh.make_tensor_value_info("sub_y", T.FLOAT, None)])
        cond = nh.from_array(np.array(True), "fz_cond")
        g.initializer.append(cond)
        node = oh.make_node("If", ["fz_cond"], ["fz_if"], name="fz_if", then_branch=sub, else_branch=sub)
    elif v < 0.6:
        node = oh.make_node(pick(c.r, ["Einsum", "TopK", "NonZero", "Unique", "Bogus", "Scan", "RNN", "Col2Im"]),
                            [x], ["fz_if"], name="fz_unsupported")
    else:
        # a float op whose attribute is a graph (nonsense) or an op of another type reading x
        node = oh.make_node(pick(c.r, ["Relu", "Sigmoid", "Identity", "Shape", "Cast", "Neg", "Sqrt", "Exp", "Log",
                                       "Erf", "Tanh", "Abs", "Floor", "Reciprocal", "Not", "Size", "ReduceMean"]),
                            [x], ["fz_if"], name="fz_extra")
        if c.r.random() < 0.3:
            node.attribute.append(oh.make_attribute("to", pick(c.r, [1, 7, 0, 99])))
    g.node.append(node)
    g.output.append(oh.make_tensor_value_info("fz_if", T.FLOAT, None))
    return f"{node.op_type} on {x}"


def mut_value_info(c):
    g = c.model.graph
    v = c.r.random()
    if v < 0.4 and g.output:
        o = pick(c.r, g.output)
        o.type.tensor_type.elem_type = pick(c.r, ELEM_TYPES)
        return f"output {o.name} declared elem_type {o.type.tensor_type.elem_type}"
    if v < 0.6 and g.output:
        o = pick(c.r, g.output)
        tt = o.type.tensor_type
        del tt.shape.dim[:]
        for _ in range(pick(c.r, [0, 1, 2, 5])):
            tt.shape.dim.add().dim_value = pick(c.r, EXTREME_INTS)
        return f"output {o.name} declared shape {[d.dim_value for d in tt.shape.dim]}"
    ts = [n.output[0] for n in g.node if n.output and n.output[0]]
    if not ts:
        return None
    name = pick(c.r, ts)
    shape = [pick(c.r, [1, 2, 3, 0, -1, 2**31]) for _ in range(pick(c.r, [0, 1, 2, 4, 7]))]
    g.value_info.append(oh.make_tensor_value_info(name, pick(c.r, [T.FLOAT, T.INT64, T.UINT8, 0]), shape))
    return f"value_info {name} = {shape}"


def external_candidates(c):
    return [t for t in c.model.graph.initializer if tensor_array(t) is not None and tensor_array(t).size > 0]


def mut_external_data(c):
    t = pick(c.r, external_candidates(c))
    if t is None:
        return None
    raw = tensor_array(t).tobytes()
    kind = pick(c.r, ["valid", "valid_offset", "outside", "absolute", "symlink_out", "symlink_in", "missing",
                      "offset_past_end", "length_long", "length_short", "negative_offset", "bad_offset",
                      "no_location", "folder", "dev_zero", "huge_length", "empty_location", "checksum"])
    loc, offset, length = "weights.bin", None, None
    data = raw
    if kind == "valid_offset":
        data, offset = bytes(100) + raw, 100
    elif kind == "outside":
        loc = "../outside.bin"
    elif kind == "absolute":
        loc = "/etc/hostname"
        data = None
    elif kind == "symlink_out":
        c.symlinks["weights.bin"] = "../outside.bin"
        c.files["../outside.bin"] = raw
        data = None
    elif kind == "symlink_in":
        c.symlinks["weights.bin"] = "real.bin"
        c.files["real.bin"] = raw
        data = None
    elif kind == "missing":
        data = None
    elif kind == "offset_past_end":
        offset = len(raw) + pick(c.r, [1, 4096, 2**31, 2**62])
    elif kind == "length_long":
        length = len(raw) + pick(c.r, [1, 2**31, 2**62])
    elif kind == "length_short":
        length = max(0, len(raw) - 1)
    elif kind == "negative_offset":
        offset = -pick(c.r, [1, 4096])
    elif kind == "bad_offset":
        offset = "abc"
    elif kind == "no_location":
        loc = None
    elif kind == "folder":
        loc = "."
        data = None
    elif kind == "dev_zero":
        loc, data = "/dev/zero", None
        length = pick(c.r, [len(raw), 2**40])
    elif kind == "huge_length":
        length = 2**63 - 1
    elif kind == "empty_location":
        loc = ""
    if loc and data is not None:
        c.files[loc] = data
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.ClearField("int64_data")
    t.ClearField("int32_data")
    t.data_location = T.EXTERNAL
    del t.external_data[:]
    if loc is not None:
        e = t.external_data.add()
        e.key, e.value = "location", loc
    if offset is not None:
        e = t.external_data.add()
        e.key, e.value = "offset", str(offset)
    if length is not None:
        e = t.external_data.add()
        e.key, e.value = "length", str(length)
    if kind == "checksum":
        e = t.external_data.add()
        e.key, e.value = "checksum", "0" * 40
    return f"{t.name}: external data {kind}"


def mut_truncate(c):
    frac = c.r.random()
    c.byte_ops.append(lambda b: b[:int(len(b) * frac)])
    return f"truncated at {frac:.3f}"


def mut_byte_flip(c):
    n = pick(c.r, [1, 2, 4, 8, 16])
    rr = random.Random(c.r.random())

    def flip(b):
        b = bytearray(b)
        for _ in range(n):
            if b:
                b[rr.randrange(len(b))] ^= 1 << rr.randrange(8)
        return bytes(b)
    c.byte_ops.append(flip)
    return f"{n} bits flipped"


def mut_shuffle(c):
    nodes = list(c.model.graph.node)
    c.r.shuffle(nodes)
    del c.model.graph.node[:]
    c.model.graph.node.extend(nodes)
    return "nodes shuffled"


def mut_drop_node(c):
    g = c.model.graph
    if not g.node:
        return None
    k = c.r.randrange(len(g.node))
    op = g.node[k].op_type
    del g.node[k]
    return f"node {k} ({op}) removed"


def mut_npy(c):
    if not c.feeds:
        return None
    name = pick(c.r, sorted(c.feeds))
    arr = c.feeds[name]
    kind = pick(c.r, ["batch0", "batch3", "extra_dim", "scalar", "f64", "i32", "f16", "bool", "nan", "inf",
                      "transposed", "big_endian", "fortran", "less_rank", "u8"])
    if kind == "batch0":
        a = np.zeros((0,) + arr.shape[1:], np.float32)
    elif kind == "batch3":
        a = np.concatenate([arr] * 3) if arr.ndim else arr
    elif kind == "extra_dim":
        a = arr[None]
    elif kind == "scalar":
        a = np.array(1.5, np.float32)
    elif kind in ("f64", "f16"):
        a = arr.astype(np.float64 if kind == "f64" else np.float16)
    elif kind == "i32":
        a = (arr * 10).astype(np.int32)
    elif kind == "u8":
        a = (np.abs(arr) * 10).astype(np.uint8)
    elif kind == "bool":
        a = arr > 0
    elif kind == "nan":
        a = arr.copy()
        a.reshape(-1)[:: max(1, a.size // 3)] = np.nan
    elif kind == "inf":
        a = arr.copy()
        a.reshape(-1)[:: max(1, a.size // 3)] = np.inf
    elif kind == "transposed":
        a = np.ascontiguousarray(arr.T)
    elif kind == "big_endian":
        a = arr.astype(">f4")
    elif kind == "fortran":
        a = np.asfortranarray(arr)
    else:
        a = arr.reshape(arr.shape[1:]) if arr.ndim > 1 and arr.shape[0] == 1 else arr.reshape(-1)
    c.feed_override[name] = a
    return f"input {name}: {kind} {a.dtype} {list(a.shape)}"


def mut_names(c):
    g = c.model.graph
    weird = pick(c.r, ["a/b", "../../escape", "x" * 300, "é名", "with space", "a=b", "", ".", "..", "-", "n\nl",
                       "fetch:0", "/abs"])
    v = c.r.random()
    if v < 0.5 and g.output:
        o = pick(c.r, g.output)
        old = o.name
        for n in g.node:
            for k, x in enumerate(n.output):
                if x == old:
                    n.output[k] = weird
            for k, x in enumerate(n.input):
                if x == old:
                    n.input[k] = weird
        o.name = weird
        return f"output {old!r} renamed {weird[:20]!r}"
    ins = graph_inputs(c.model)
    if not ins:
        return None
    i = pick(c.r, ins)
    old = i.name
    for n in g.node:
        for k, x in enumerate(n.input):
            if x == old:
                n.input[k] = weird
    i.name = weird
    if old in c.feeds:
        c.feeds[weird] = c.feeds.pop(old)
        if old in c.feed_override:
            c.feed_override[weird] = c.feed_override.pop(old)
    return f"input {old!r} renamed {weird[:20]!r}"


def mut_misc_proto(c):
    g = c.model.graph
    v = c.r.random()
    if v < 0.25 and g.initializer:
        t = pick(c.r, g.initializer)
        t.segment.begin, t.segment.end = 0, 1
        return f"{t.name}: segment set"
    if v < 0.45:
        sp = onnx.SparseTensorProto()
        sp.values.CopyFrom(nh.from_array(np.array([1.0, 2.0], np.float32), "fz_sparse"))
        sp.indices.CopyFrom(nh.from_array(np.array([0, 5], np.int64), "fz_sparse_idx"))
        sp.dims.extend([pick(c.r, [4, 2, 2**40])])
        g.sparse_initializer.append(sp)
        return "sparse initializer"
    if v < 0.65 and g.initializer:
        t = pick(c.r, g.initializer)
        name = t.name
        t.CopyFrom(oh.make_tensor(name, T.STRING, [2], [b"a", b"b"]))
        return f"{name}: string tensor"
    if v < 0.8:
        c.model.metadata_props.add(key="k" * 10, value="v" * pick(c.r, [0, 100000]))
        c.model.metadata_props.add(key="k" * 10, value="dup")
        return "metadata (long, duplicate key)"
    if g.node:
        n = pick(c.r, g.node)
        sub = oh.make_graph([], "g", [], [])
        n.attribute.append(oh.make_attribute(pick(c.r, ["body", "group", "pads"]), sub))
        return f"{n.name}: graph attribute"
    return None


def mut_lstm_gru(c):
    """Targeted: recurrent and resize nodes with absurd modes/sizes (the seeds have them)."""
    nodes = [n for n in c.model.graph.node if n.op_type in ("LSTM", "GRU", "Resize", "Conv", "MaxPool",
                                                             "AveragePool", "ConvTranspose", "Split", "Softmax")]
    n = pick(c.r, nodes)
    if n is None:
        return None
    name = pick(c.r, KNOWN_ATTRS[n.op_type])
    value = absurd_attr_value(c, name, n)
    for a in [a for a in n.attribute if a.name == name]:
        n.attribute.remove(a)
    try:
        n.attribute.append(oh.make_attribute(name, value))
    except Exception:
        return None
    return f"{n.op_type} {n.name}.{name} = {value!r}"[:200]


MUTATIONS = [  # (name, function, weight)
    ("input_dim", mut_input_dim, 6), ("input_dtype", mut_input_dtype, 3), ("init_dims", mut_init_dims, 6),
    ("init_dtype", mut_init_dtype, 4), ("raw_data", mut_raw_data, 4), ("empty_tensor", mut_empty_tensor, 3),
    ("extreme_values", mut_extreme_values, 3), ("int_values", mut_int_values, 5), ("duplicate", mut_duplicate, 4),
    ("cycle", mut_cycle, 2), ("missing_input", mut_missing_input, 4), ("outputs", mut_outputs, 3),
    ("attr_absurd", mut_attr_absurd, 8), ("attr_type", mut_attr_type, 3), ("qdq_params", mut_qdq_params, 6),
    ("insert_qdq", mut_insert_qdq, 2), ("opset", mut_opset, 3), ("domain", mut_domain, 2),
    ("unsupported_node", mut_unsupported_node, 2), ("value_info", mut_value_info, 2),
    ("external_data", mut_external_data, 4), ("truncate", mut_truncate, 2), ("byte_flip", mut_byte_flip, 3),
    ("shuffle", mut_shuffle, 1), ("drop_node", mut_drop_node, 2), ("npy", mut_npy, 4), ("names", mut_names, 2),
    ("misc_proto", mut_misc_proto, 2), ("targeted_attr", mut_lstm_gru, 6),
]
MUTATION_BY_NAME = {n: f for n, f, _ in MUTATIONS}


def make_case(seeds, seed, index, only=None):
    r = random.Random(seed * 1_000_003 + index)
    weights = [getattr(s, "weight", 2) for s in seeds]
    s = r.choices(seeds, weights)[0]
    c = Case(s, r, index)
    n_mut = r.choices([0, 1, 2, 3], [2, 70, 20, 8])[0]
    muts = [m for m in MUTATIONS if only is None or m[0] in only]
    for _ in range(n_mut):
        for _attempt in range(6):
            name, fn, _ = r.choices(muts, [w for *_, w in muts])[0]
            try:
                detail = fn(c)
            except Exception as e:  # a mutation that cannot apply here (protobuf range, ...)
                detail = None
                if os.environ.get("FUZZ_DEBUG"):
                    print(f"mutation {name} failed: {e!r}", file=sys.stderr)
            if detail:
                c.note(name, detail)
                break
    if not c.kinds:
        c.kinds.append("none")
    c.command = r.choices(["run", "inspect", "quantize"], [75, 13, 12])[0]
    if c.command == "quantize" and s.size > 2_000_000:
        c.command = "run"
    c.method = pick(r, ["minmax", "absmax", "percentile", "mse", "entropy"])
    return c


# --------------------------------------------------------------------------------------------
# Writing and running a case
# --------------------------------------------------------------------------------------------

def declared_feeds(c):
    """Feeds from the model's declared inputs (shape and type), the seed's arrays otherwise."""
    feeds = {}
    rng = np.random.default_rng(c.index)
    for i in graph_inputs(c.model):
        if i.name in c.feed_override:
            feeds[i.name] = c.feed_override[i.name]
            continue
        orig = c.feeds.get(i.name)
        tt = i.type.tensor_type
        shape = []
        ok = tt.HasField("shape")
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value >= 0:
                shape.append(d.dim_value)
            elif orig is not None and k < orig.ndim and not d.HasField("dim_value"):
                shape.append(orig.shape[k])
            elif not d.HasField("dim_value"):
                shape.append(1)
            else:
                ok = False
        if not ok or int(np.prod(shape, dtype=np.float64)) > 4_000_000 or any(d > 4_000_000 for d in shape):
            if orig is not None:
                feeds[i.name] = orig
            continue
        dt = NP_OF.get(tt.elem_type)
        if dt is None:
            if orig is not None:
                feeds[i.name] = orig
            continue
        if orig is not None and list(orig.shape) == shape and dt == np.float32:
            feeds[i.name] = orig
        elif dt == np.bool_:
            feeds[i.name] = rng.random(shape) > 0.5
        elif np.dtype(dt).kind in "iu":
            feeds[i.name] = rng.integers(0, 3, shape).astype(dt)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def safe_file(name, i):
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:40]
    return f"in{i}_{s}.npy"


def output_file_name(name):
    return "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "._-")) else "_" for ch in name) + ".npy"


def write_case(c, case_dir):
    """Writes w/model.onnx, inputs, calibration, external files; returns the argument list."""
    w = os.path.join(case_dir, "w")
    os.makedirs(os.path.join(w, "inputs"), exist_ok=True)
    try:
        data = c.model.SerializeToString()
    except Exception:
        data = c.seed.model_bytes
        c.note("serialize_failed", "fell back to the seed")
    for op in c.byte_ops:
        data = op(data)
    with open(os.path.join(w, "model.onnx"), "wb") as f:
        f.write(data)
    for rel, content in c.files.items():
        p = os.path.normpath(os.path.join(w, rel))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content)
    for rel, target in c.symlinks.items():
        p = os.path.join(w, rel)
        if os.path.lexists(p):
            os.remove(p)
        os.symlink(target, p)
    feeds = declared_feeds(c)
    args = [c.command, "model.onnx"]
    if c.command == "quantize":
        cal = os.path.join(w, "calib")
        os.makedirs(cal, exist_ok=True)
        os.makedirs(os.path.join(w, "out"), exist_ok=True)
        rng = np.random.default_rng(c.index)
        for k in range(2):
            sample = {}
            for n, a in feeds.items():
                sample[n] = (a + rng.standard_normal(a.shape).astype(a.dtype) * 0.1) if a.dtype.kind == "f" and a.size else a
            if len(sample) == 1:
                np.save(os.path.join(cal, f"s{k}.npy"), next(iter(sample.values())))
            else:
                np.savez(os.path.join(cal, f"s{k}.npz"), **sample)
        args += ["--calibration", "calib", "--output", "out/q.onnx", "--method", c.method, "--max-samples", "2"]
        return args
    names = list(feeds)
    for k, n in enumerate(names):
        f = os.path.join("inputs", safe_file(n, k))
        np.save(os.path.join(w, f), feeds[n])
        if len(names) == 1 and c.r.random() < 0.3:
            args += ["--input", f]
        else:
            args += ["--input", f"{n}={f}"]
    if c.command == "run":
        args += ["--output-dir", "out"]
    elif c.r.random() < 0.3:
        args.append("--json")
    if not names:  # a model without inputs: still give one (the CLI insists on it)
        np.save(os.path.join(w, "inputs", "dummy.npy"), np.zeros([1], np.float32))
        args += ["--input", "inputs/dummy.npy"]
    return args


def run_binary(binary, args, cwd, timeout):
    """Runs the binary; returns (rc or None on timeout, stdout, stderr, hang stack)."""
    env = dict(os.environ)
    env["SWIFT_BACKTRACE"] = "enable=no"  # crashes are rerun under gdb (classify)
    env["OMP_NUM_THREADS"] = "1"
    cmd = ["prlimit", f"--as={MEMORY_LIMIT}", f"--fsize={FILE_LIMIT}", "--core=0", binary] + args
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), ""
    except subprocess.TimeoutExpired:
        stack = ""
        try:
            g = subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "thread apply all bt 25"],
                               capture_output=True, text=True, timeout=60)
            stack = g.stdout
        except Exception:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), stack


ORT_WORKER = r"""
import json, os, sys
import numpy as np
import onnxruntime as ort
ort.set_default_logger_severity(4)
for line in sys.stdin:
    req = json.loads(line)
    phase = "load"
    try:
        if req.get("reference"):
            import onnx
            from onnx.reference import ReferenceEvaluator
            phase = "reference"
            m = onnx.load(req["model"])
            for n in m.graph.node:
                if n.domain == "ai.onnx":
                    n.domain = ""
            try:
                ref = ReferenceEvaluator(m)
            except RuntimeError as e:  # it lacks QuantizeLinear/DequantizeLinear before opset 19
                if "No implementation" not in str(e):
                    raise
                for o in m.opset_import:
                    if o.domain in ("", "ai.onnx") and 13 <= o.version < 19:
                        o.version = 19
                ref = ReferenceEvaluator(m)
            feeds = {k: np.load(v) for k, v in req["feeds"].items()}
            outs = ref.run(None, feeds)
            resp = {"ok": True, "outputs": []}
            for i, (name, v) in enumerate(zip(ref.output_names, outs)):
                p = os.path.join(req["outdir"], f"ref_{i}.npy")
                np.save(p, np.asarray(v), allow_pickle=False)
                resp["outputs"].append([name, p])
            print(json.dumps(resp), flush=True)
            continue
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 4
        sess = ort.InferenceSession(req["model"], so, providers=["CPUExecutionProvider"])
        resp = {"ok": True, "outputs": []}
        if req.get("feeds") is not None:
            phase = "run"
            feeds = {k: np.load(v) for k, v in req["feeds"].items()}
            outs = sess.run(None, feeds)
            for i, (o, v) in enumerate(zip(sess.get_outputs(), outs)):
                p = os.path.join(req["outdir"], f"ort_{i}.npy")
                np.save(p, np.asarray(v), allow_pickle=False)
                resp["outputs"].append([o.name, p])
    except Exception as e:
        resp = {"ok": False, "phase": phase, "error": str(e)[:400]}
    print(json.dumps(resp), flush=True)
"""


class OrtWorker:
    """A long-lived onnxruntime process (one per job); restarted when it dies or hangs."""

    def __init__(self):
        self.p = None

    def start(self):
        self.p = subprocess.Popen(["prlimit", f"--as={MEMORY_LIMIT * 2}", f"--fsize={FILE_LIMIT}", "--core=0",
                                   sys.executable, "-c", ORT_WORKER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.buf = b""

    def close(self):
        if self.p:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait()
            self.p = None

    def run(self, model, feeds, outdir, timeout=60, reference=False):
        if self.p is None or self.p.poll() is not None:
            self.start()
        req = json.dumps({"model": model, "feeds": feeds, "outdir": outdir, "reference": reference}) + "\n"
        try:
            self.p.stdin.write(req.encode())
            self.p.stdin.flush()
        except OSError:
            self.close()
            return {"ok": False, "phase": "crash", "error": "onnxruntime worker died"}
        deadline = time.time() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                self.close()
                return {"ok": False, "phase": "timeout", "error": "onnxruntime timed out"}
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.close()
                    return {"ok": False, "phase": "crash", "error": "onnxruntime crashed"}
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------

FRAME_RE = re.compile(r"(?:at|in) .*?/Sources/([A-Za-z0-9_/\-]+\.swift):(\d+)")
FATAL_RE = re.compile(r"^(?:(\S+\.swift):(\d+): )?Fatal error: ?(.*)$", re.M)


def signal_name(rc):
    try:
        return signal.Signals(-rc).name
    except (ValueError, TypeError):
        return f"signal{-rc}"


def gdb_stack(binary, args, cwd, timeout):
    """Reruns a crashing command under gdb: the stack of the crash (also through libdnnl)."""
    shutil.rmtree(os.path.join(cwd, "out.gdb"), ignore_errors=True)
    args = ["out.gdb" if i > 0 and args[i - 1] == "--output-dir" else a for i, a in enumerate(args)]
    env = dict(os.environ, SWIFT_BACKTRACE="enable=no", OMP_NUM_THREADS="1")
    try:
        g = subprocess.run(["prlimit", f"--as={MEMORY_LIMIT}", f"--fsize={FILE_LIMIT}", "gdb", "-nx", "-batch",
                            "-ex", "set debuginfod enabled off", "-ex", "run", "-ex", "bt 30", "--args", binary] + args,
                           cwd=cwd, capture_output=True, text=True, timeout=timeout + 60, env=env)
        return "\n".join(ln for ln in g.stdout.splitlines() if ln.startswith("#") or "signal" in ln.lower())
    except Exception:
        return ""
    finally:
        shutil.rmtree(os.path.join(cwd, "out.gdb"), ignore_errors=True)


def crash_signature(rc, stderr, stack=""):
    parts = []
    if rc is None:
        parts.append("HANG")
    elif rc < 0:
        parts.append(signal_name(rc))
    else:
        parts.append(f"exit{rc}")
    m = FATAL_RE.search(stderr)
    if m:
        where = f"{os.path.basename(m.group(1))}:{m.group(2)}" if m.group(1) else ""
        msg = re.sub(r"\d+", "N", m.group(3))[:60].strip()
        parts.append(f"{where} {msg}".strip())
    frames = []
    for f, line in FRAME_RE.findall(stack + "\n" + stderr):
        fr = f"{os.path.basename(f)}:{line}"
        if fr not in frames:
            frames.append(fr)
    if stack and "libdnnl" in stack.split("\n", 1)[0] + (stack.splitlines()[1] if len(stack.splitlines()) > 1 else ""):
        parts.append("libdnnl")
    parts += frames[:2]
    if len(parts) == 1 and stderr.strip():
        parts.append(re.sub(r"\d+", "N", stderr.strip().splitlines()[-1])[:60])
    return " | ".join(parts)


def slug(sig):
    s = re.sub(r"[^A-Za-z0-9]+", "-", sig).strip("-")[:70]
    return f"{s}-{hashlib.sha1(sig.encode()).hexdigest()[:6]}"


def parse_args(args):
    """(subcommand, model, {input name or '': file}, output dir or output file)."""
    cmd, model = args[0], args[1]
    inputs, out = {}, None
    i = 2
    while i < len(args):
        if args[i] == "--input":
            spec = args[i + 1]
            if "=" in spec:
                n, f = spec.split("=", 1)
            else:
                n, f = "", spec
            inputs[n] = f
            i += 2
        elif args[i] in ("--output-dir", "--output"):
            out = args[i + 1]
            i += 2
        else:
            i += 1
    return cmd, model, inputs, out


def model_scales(model_path):
    """The largest positive finite Q/DQ scale of a model (0 when it has no Q/DQ)."""
    try:
        m = onnx.load(model_path, load_external_data=False)
    except Exception:
        return 0.0
    inits = {t.name: t for t in m.graph.initializer}
    best = 0.0
    for n in m.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 1 and n.input[1] in inits:
            a = tensor_array(inits[n.input[1]])
            if a is not None and a.size:
                a = a.astype(np.float64)
                a = a[np.isfinite(a) & (a > 0)]
                if a.size:
                    best = max(best, float(a.max()))
    return best


def compare(ours, ref, qstep):
    """None when equal within tolerance, else a description."""
    if ours.shape != ref.shape:
        return f"shape {list(ours.shape)} vs {list(ref.shape)}"
    if ref.dtype.kind not in "fiub" or ours.dtype.kind not in "fiub":
        return None
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    if a.size == 0:
        return None
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if (nan_a != nan_b).any():
        k = int(np.argmax(nan_a != nan_b))
        return f"NaN differs at {int((nan_a != nan_b).sum())}/{a.size} elements (first [{k}]: ours {a.reshape(-1)[k]:.6g}, reference {b.reshape(-1)[k]:.6g})"
    fin = np.isfinite(b) & np.isfinite(a)
    inf_diff = (~fin & ~nan_a) & (a != b)
    if inf_diff.any():
        k = int(np.argmax(inf_diff))
        return f"Inf differs at {int(inf_diff.sum())}/{a.size} elements (first [{k}]: ours {a.reshape(-1)[k]:.6g}, reference {b.reshape(-1)[k]:.6g})"
    if not fin.any():
        return None
    refmax = float(np.abs(b[fin]).max())
    tol = 1e-4 * max(refmax, 1e-3) + 1e-3 * np.abs(b) + 3 * qstep
    diff = np.abs(a - b)
    bad = fin & (diff > tol)
    if qstep > 0 and bad.sum() <= max(1, 0.02 * a.size) and (diff[fin] <= 12 * qstep + 1e-3 * refmax).all():
        return None  # int8 rounding: a few elements a few steps off
    if bad.any():
        k = int(np.argmax(np.where(bad, diff, -1)))
        return f"max |diff| {float(diff.reshape(-1)[k]):.4g} at [{k}] (ours {a.reshape(-1)[k]:.6g}, reference {b.reshape(-1)[k]:.6g}), {int(bad.sum())}/{a.size} elements"
    if ours.dtype != ref.dtype and ref.dtype.kind != ours.dtype.kind:
        return f"dtype {ours.dtype} vs {ref.dtype}"
    return None


def compare_all(outputs, cwd, outp, qstep):
    """The first difference between our output files and (name, path) reference outputs."""
    for name, p in outputs:
        f = os.path.join(cwd, outp, output_file_name(name))
        if not os.path.exists(f):
            return f"missing: output {name!r} not written"
        try:
            ours, ref = np.load(f), np.load(p)
        except Exception as e:
            return f"unreadable: {e}"
        d = compare(ours, ref, qstep)
        if d:
            return f"output {name!r}: {d}"
    return None


def mismatch_what(note):
    for w in ("missing", "unreadable", "shape", "NaN", "Inf", "dtype"):
        if w in note:
            return w
    return "values"


class Result:
    def __init__(self, outcome, signature=None, note="", stack=""):
        self.outcome, self.signature, self.note, self.stack = outcome, signature, note, stack
        self.reference_agrees = False


def classify(binary, args, cwd, rc, out, err, stack, ort, timeout):
    """The outcome of one command (onnxruntime, and the ONNX reference on a disagreement)."""
    if rc is None:
        return Result("HANG", crash_signature(None, err, stack) + f" | {args[0]}", "timeout", stack)
    error_line = next((ln for ln in err.splitlines() if ln.startswith("Error:")), None)
    if rc < 0 or rc not in (0, 1, 64):
        stack = gdb_stack(binary, args, cwd, timeout) if rc < 0 else ""
        return Result("CRASH", crash_signature(rc, err, stack), f"rc {rc}", stack)
    if rc != 0:
        if error_line is None:
            return Result("CRASH", crash_signature(rc, err) + " | no Error: line", f"rc {rc} without Error:")
        return Result("clean-error", None, error_line[:200])
    cmd, model, inputs, outp = parse_args(args)
    model_path = os.path.join(cwd, model)
    ort_dir = os.path.join(cwd, "out.ort")  # onnxruntime's and the reference's outputs
    os.makedirs(ort_dir, exist_ok=True)
    if cmd == "run":
        feeds = {}
        for n, f in inputs.items():
            if n == "":
                try:
                    gi = graph_inputs(onnx.load(model_path, load_external_data=False))
                    n = gi[0].name if gi else ""
                except Exception:
                    n = ""
            feeds[n] = os.path.join(cwd, f)
        r = ort.run(model_path, feeds, ort_dir)
        if not r["ok"]:
            return Result("ok-ort-refuses", None, f"onnxruntime {r['phase']}: {r['error'][:150]}")
        qstep = model_scales(model_path)
        d = compare_all(r["outputs"], cwd, outp, qstep)
        if d is None:
            return Result("ok-matches-ort")
        note = d.replace("reference", "onnxruntime")
        # onnxruntime is not always right: the ONNX reference implementation decides
        if os.path.getsize(model_path) < 4_000_000:
            ref = ort.run(model_path, feeds, ort_dir, reference=True)
            if ref["ok"] and compare_all(ref["outputs"], cwd, outp, qstep) is None:
                res = Result("ok-matches-ort", None, "onnxruntime differs, the ONNX reference agrees: " + note)
                res.reference_agrees = True
                return res
            if not ref["ok"]:
                note += f" [ONNX reference failed: {ref['error'][:80]}]"
            else:
                same = all(compare(np.load(a), np.load(b), qstep) is None
                           for (_, a), (_, b) in zip(r["outputs"], ref["outputs"]))
                note += " [ONNX reference agrees with onnxruntime]" if same else " [ONNX reference differs from both]"
        return Result("MISMATCH", None, note)
    # inspect / quantize: onnxruntime must run the model (on the --input files or the first
    # calibration sample) for it to count as accepted
    feeds = {n: os.path.join(cwd, f) for n, f in inputs.items() if n}
    if cmd == "quantize" and "--calibration" in args:
        cal = os.path.join(cwd, args[args.index("--calibration") + 1])
        files = sorted(os.listdir(cal)) if os.path.isdir(cal) else []
        if files and files[0].endswith(".npz"):
            os.makedirs(os.path.join(cwd, "out", "ortfeeds"), exist_ok=True)
            with np.load(os.path.join(cal, files[0])) as z:
                for n in z.files:
                    feeds[n] = os.path.join(cwd, "out", "ortfeeds", f"{len(feeds)}.npy")
                    np.save(feeds[n], z[n])
        elif files:
            try:
                gi = graph_inputs(onnx.load(model_path, load_external_data=False))
                feeds = {gi[0].name: os.path.join(cal, files[0])} if gi else {}
            except Exception:
                feeds = {}
    r = ort.run(model_path, feeds, ort_dir)
    if not r["ok"]:
        return Result("ok-ort-refuses", None, f"onnxruntime {r['phase']}: {r['error'][:150]}")
    if cmd == "quantize":
        q = os.path.join(cwd, outp)
        if not os.path.exists(q):
            return Result("MISMATCH", "MISMATCH quantize exit 0 without output", "")
        r2 = ort.run(q, feeds, ort_dir)
        if not r2["ok"]:
            return Result("MISMATCH", "MISMATCH quantized model refused by onnxruntime",
                          f"onnxruntime runs the model but not the quantized one: {r2['error'][:200]}")
    return Result("ok-matches-ort")


def mutation_keys(details):
    """What a case did, without names and numbers: 'attr GRU.linear_before_reset', 'npy nan', ..."""
    keys = []
    for d in details:
        kind, _, rest = d.partition(": ")
        m = re.match(r"(\w+) \S+\.(\w+) = ", rest)
        if kind in ("attr_absurd", "targeted_attr") and m:
            keys.append(f"attr {m.group(1)}.{m.group(2)}")
        elif kind == "npy":
            keys.append("npy " + rest.split(": ")[1].split()[0])
        elif kind == "extreme_values":
            keys.append("weights " + rest.split("= ")[-1])
        elif kind == "qdq_params":
            keys.append("qdq " + re.sub(r"^\w+ \S+ ", "", rest).split(" =")[0] + " " + rest.split("= ")[-1].split()[0]
                        if "=" in rest else "qdq " + re.sub(r"^\w+ \S+ ", "", rest))
        else:
            keys.append(kind)
    return sorted(set(keys)) or ["none"]


NON_FINITE = re.compile(r"(= |all = |\] = )(nan|inf|-inf|3e\+38|-3e\+38|3\.4e\+38|-3\.4e\+38|1e\+20|1e\+30)\b|: (nan|inf) float")


EXTREME_FINITE = re.compile(r"(= |all = |\] = )(1e-45|1e-40|1e-38|1e\+30|3\.4e\+38|-3\.4e\+38|3e\+38|-3e\+38)(\b|$)")


def mismatch_signature(details, note):
    """Mismatches group by what differs and what the mutations did (names and numbers left out)."""
    if any(NON_FINITE.search(d) for d in details if d.split(":")[0] in ("npy", "extreme_values", "attr_absurd", "targeted_attr")):
        return "MISMATCH non-finite propagation (NaN/Inf/huge inputs, weights or attributes)"
    if any(EXTREME_FINITE.search(d) for d in details
           if d.split(":")[0] in ("npy", "extreme_values", "attr_absurd", "targeted_attr", "qdq_params")):
        return "MISMATCH extreme finite values (denormal constants, Q/DQ scales <= 1e-38 or >= 1e30)"
    if "ONNX reference differs from both" in note:
        return f"MISMATCH ambiguous (the ONNX reference differs from both) | {' + '.join(mutation_keys(details))}"
    return f"MISMATCH {mismatch_what(note)} | {' + '.join(mutation_keys(details))}"


# --------------------------------------------------------------------------------------------
# Minimization
# --------------------------------------------------------------------------------------------

def reproduce(binary, case_dir, args, timeout, ort, want):
    w = os.path.join(case_dir, "w")
    shutil.rmtree(os.path.join(w, "out"), ignore_errors=True)
    if args[0] == "quantize":
        os.makedirs(os.path.join(w, "out"), exist_ok=True)
    rc, out, err, stack = run_binary(binary, args, w, timeout)
    res = classify(binary, args, w, rc, out, err, stack, ort, timeout)
    if want.startswith("MISMATCH-WHAT:"):  # a mismatch of the same kind (shape, NaN, values, ...)
        same = res.outcome == "MISMATCH" and res.signature is None and mismatch_what(res.note) == want[14:]
    else:
        same = res.signature == want
    return same, (rc, out, err, res)


def used_names(m):
    used = set()
    for n in m.graph.node:
        used.update(n.input)
    used.update(o.name for o in m.graph.output)
    return used


def prune(m):
    used = used_names(m)
    keep = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    names = {t.name for t in m.graph.initializer} | {i.name for i in m.graph.input}
    for n in m.graph.node:
        names.update(n.output)
    keep = [v for v in m.graph.value_info if v.name in names]
    del m.graph.value_info[:]
    m.graph.value_info.extend(keep)


def minimize(binary, case_dir, args, sig, timeout, ort, budget):
    """Greedy reductions of w/model.onnx that keep the signature; returns the number applied."""
    w = os.path.join(case_dir, "w")
    path = os.path.join(w, "model.onnx")
    try:
        with open(path, "rb") as f:
            base = onnx.ModelProto()
            base.ParseFromString(f.read())
        if not base.graph.node:
            return 0
        base.SerializeToString()
    except Exception:
        return 0  # byte-level cases (truncated, flipped) stay as they are
    original = open(path, "rb").read()
    deadline = time.time() + budget
    applied = 0

    def attempt(m):
        try:
            data = m.SerializeToString()
        except Exception:
            return False
        with open(path, "wb") as f:
            f.write(data)
        same, _ = reproduce(binary, case_dir, args, timeout, ort, sig)
        return same

    def commit(m):
        nonlocal base, applied
        base = m
        applied += 1
        with open(path, "wb") as f:
            f.write(base.SerializeToString())

    # 1. the shortest prefix of nodes whose last node's outputs are the graph outputs (bisection)
    nodes = list(base.graph.node)
    if len(nodes) > 4:
        def prefix(k):
            m = copy.deepcopy(base)
            del m.graph.node[k:]
            outs = [o for o in m.graph.node[-1].output if o]
            del m.graph.output[:]
            m.graph.output.extend(oh.make_tensor_value_info(o, T.FLOAT, None) for o in outs)
            prune(m)
            return m
        lo, hi = 1, len(nodes)
        while lo < hi and time.time() < deadline:
            mid = (lo + hi) // 2
            if attempt(prefix(mid)):
                hi = mid
            else:
                lo = mid + 1
        if hi < len(nodes) and attempt(prefix(hi)):
            commit(prefix(hi))
    # 2. bypass single nodes (consumers read the node's first input instead), last first
    k = len(base.graph.node) - 1
    while k >= 0 and time.time() < deadline and len(base.graph.node) > 1:
        m = copy.deepcopy(base)
        n = m.graph.node[k]
        if n.input and n.input[0] and n.output:
            src, dst = n.input[0], set(o for o in n.output if o)
            del m.graph.node[k]
            for other in m.graph.node:
                for j, x in enumerate(other.input):
                    if x in dst:
                        other.input[j] = src
            for o in m.graph.output:
                if o.name in dst:
                    o.name = src
            if len({o.name for o in m.graph.output}) == len(m.graph.output) and \
                    src not in {i.name for i in m.graph.input if i.name in {o.name for o in m.graph.output}}:
                prune(m)
                if attempt(m):
                    commit(m)
        k -= 1
    # 3. drop other graph outputs, then cleanup
    if len(base.graph.output) > 1:
        for keep in range(len(base.graph.output)):
            m = copy.deepcopy(base)
            o = m.graph.output[keep]
            del m.graph.output[:]
            m.graph.output.append(o)
            prune(m)
            if attempt(m):
                commit(m)
                break
    # 4. dead nodes (outputs nobody reads), then cleanup
    m = copy.deepcopy(base)
    while True:
        used = used_names(m)
        dead = [k for k, n in enumerate(m.graph.node) if not any(o in used for o in n.output if o)]
        if not dead or len(dead) == len(m.graph.node):
            break
        for k in reversed(dead):
            del m.graph.node[k]
    prune(m)
    if time.time() < deadline + 30 and attempt(m):
        commit(m)
    # 5. value_info, metadata, doc strings
    m = copy.deepcopy(base)
    del m.graph.value_info[:]
    del m.metadata_props[:]
    m.graph.doc_string = m.doc_string = ""
    if time.time() < deadline + 30 and attempt(m):
        commit(m)
    with open(path, "wb") as f:
        f.write(base.SerializeToString() if applied else original)
    # the inputs of graph inputs that no longer exist go
    return applied


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes = collections.Counter()
        self.by_kind = collections.defaultdict(collections.Counter)
        self.by_seed = collections.defaultdict(collections.Counter)
        self.findings = {}    # signature -> info
        self.cases = 0
        self.refused_examples = []
        self.refused_keys = collections.Counter()
        self.reference_agrees = collections.Counter()  # onnxruntime differs, the ONNX reference agrees with us
        self.known = collections.Counter()  # KNOWN_DIFFERENCES signature -> cases


def save_finding(out_root, case_dir, args, sig, info):
    dst = os.path.join(out_root, slug(sig))
    if os.path.exists(dst):
        try:  # keep the smaller reproducer of the same signature (from an earlier session)
            if os.path.getsize(os.path.join(dst, "w", "model.onnx")) <= info.get("model_bytes", 1 << 62):
                return dst
        except OSError:
            pass
        shutil.rmtree(dst)
    shutil.copytree(case_dir, dst, symlinks=True, ignore=shutil.ignore_patterns("out", "out.gdb", "out.ort"))
    with open(os.path.join(dst, "cmd.txt"), "w") as f:
        f.write(shlex.join(args) + "\n")
    with open(os.path.join(dst, "stderr.txt"), "w") as f:
        f.write(info.get("stderr", ""))
        if info.get("stack"):
            f.write("\n--- gdb stack at timeout ---\n" + info["stack"])
    meta = {k: v for k, v in info.items() if k not in ("stderr", "stack")}
    meta["signature"] = sig
    with open(os.path.join(dst, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, default=str)
    return dst


def run_case(opts, seeds, stats, index, ort, tmp_root):
    c = make_case(seeds, opts.seed, index, opts.only)
    case_dir = tempfile.mkdtemp(prefix=f"case{index}-", dir=tmp_root)
    keep = opts.keep
    try:
        args = write_case(c, case_dir)
        w = os.path.join(case_dir, "w")
        timeout = opts.timeout * (3 if c.command == "quantize" else 1)
        t0 = time.time()
        rc, out, err, stack = run_binary(opts.binary, args, w, timeout)
        dt = time.time() - t0
        res = classify(opts.binary, args, w, rc, out, err, stack, ort, timeout)
        outcome, sig, note, stack = res.outcome, res.signature, res.note, res.stack or stack
        known = None
        if outcome == "MISMATCH" and sig is None:
            sig = mismatch_signature(c.details, note)
            if sig in KNOWN_DIFFERENCES and mismatch_what(note) in KNOWN_DIFFERENCE_WHATS:
                outcome, known, sig = "known-difference", sig, None
        line = f"case {index}: {c.seed.name} [{'; '.join(c.details)}] {c.command} -> {outcome} ({dt:.1f}s) {note[:160]}"
        if opts.verbose or outcome in FINDING_OUTCOMES:
            print(line, flush=True)
        new = False
        with stats.lock:
            stats.cases += 1
            stats.outcomes[outcome] += 1
            stats.by_seed[c.seed.name][outcome] += 1
            for k in set(c.kinds):
                stats.by_kind[k][outcome] += 1
            if res.reference_agrees:
                stats.reference_agrees[mismatch_signature(c.details, note)] += 1
            if known:
                stats.known[known] += 1
            if outcome == "ok-ort-refuses":
                stats.refused_keys[" + ".join(mutation_keys(c.details))] += 1
            if outcome == "ok-ort-refuses" and len(stats.refused_examples) < 30:
                stats.refused_examples.append(line[:300])
            if sig:
                if sig not in stats.findings:
                    stats.findings[sig] = {"count": 0, "cases": [], "outcome": outcome}
                    new = True
                stats.findings[sig]["count"] += 1
                stats.findings[sig]["cases"].append(index)
        if new:
            info = {"outcome": outcome, "seed": opts.seed, "case": index, "seed_model": c.seed.name,
                    "mutations": c.details, "command": args, "rc": rc, "note": note, "stderr": err, "stack": stack}
            n = 0
            if opts.minimize_seconds > 0:
                want = sig if res.signature else "MISMATCH-WHAT:" + mismatch_what(note)
                n = minimize(opts.binary, case_dir, args, want, timeout, ort, opts.minimize_seconds)
                # refresh stderr of the minimized reproducer
                _, (rc2, _, err2, res2) = reproduce(opts.binary, case_dir, args, timeout, ort, want)
                info["stderr"], info["stack"], info["note_minimized"] = err2, res2.stack, res2.note
            info["reductions"] = n
            info["model_bytes"] = os.path.getsize(os.path.join(case_dir, "w", "model.onnx"))
            dst = save_finding(opts.out, case_dir, args, sig, info)
            with stats.lock:
                stats.findings[sig]["path"] = dst
                stats.findings[sig]["trigger"] = f"{c.seed.name}: {'; '.join(c.details)}"
                stats.findings[sig]["fatal"] = next((ln for ln in err.splitlines() if "Fatal error" in ln), "")[:200]
            print(f"  new finding: {sig}\n  saved: {dst} ({info['model_bytes']} bytes, {n} reductions)", flush=True)
    finally:
        if not keep:
            shutil.rmtree(case_dir, ignore_errors=True)
        else:
            print(f"case folder: {case_dir}")


def report(stats, elapsed, out_root):
    lines = [f"cases: {stats.cases} in {elapsed:.0f} s"]
    lines.append("outcomes: " + ", ".join(f"{o} {stats.outcomes.get(o, 0)}" for o in OUTCOMES))
    lines.append("by mutation kind:")
    for k in sorted(stats.by_kind):
        cnt = stats.by_kind[k]
        lines.append(f"  {k:18s} " + " ".join(f"{o}={cnt[o]}" for o in OUTCOMES if cnt[o]))
    lines.append("by seed:")
    for k in sorted(stats.by_seed):
        cnt = stats.by_seed[k]
        lines.append(f"  {k:38s} " + " ".join(f"{o}={cnt[o]}" for o in OUTCOMES if cnt[o]))
    if stats.refused_keys:
        lines.append("accepted what onnxruntime refuses (ok-ort-refuses), most frequent mutations:")
        for k, v in stats.refused_keys.most_common(12):
            lines.append(f"  {k[:90]} (x{v})")
    if stats.reference_agrees:
        lines.append(f"onnxruntime differs but the ONNX reference agrees with us (counted ok-matches-ort): "
                     f"{sum(stats.reference_agrees.values())}")
        for k, v in stats.reference_agrees.most_common(10):
            lines.append(f"  {k} (x{v})")
    if stats.known:
        lines.append("known differences (known-difference, not findings):")
        for k, v in stats.known.most_common():
            lines.append(f"  {k} (x{v}): {KNOWN_DIFFERENCES[k]}")
    lines.append(f"distinct findings: {len(stats.findings)}")
    for sig, f in sorted(stats.findings.items()):
        lines.append(f"  [{f['outcome']}] {sig}  (x{f['count']}, first case {f['cases'][0]})")
        if f.get("trigger"):
            lines.append(f"      trigger: {f['trigger'][:300]}")
        if f.get("path"):
            lines.append(f"      reproducer: {f['path']}")
    text = "\n".join(lines)
    print(text)
    if out_root and os.path.isdir(out_root):
        with open(os.path.join(out_root, "summary.txt"), "w") as f:
            f.write(text + "\n")


def snapshot_binary(binary, tmp_root):
    """A private copy, so rebuilds of the tree's binary during a session do not race us."""
    for _ in range(30):
        if os.access(binary, os.X_OK):
            dst = os.path.join(tmp_root, "dnnl-quant")
            try:
                shutil.copy2(binary, dst)
                return dst
            except OSError:
                pass
        time.sleep(2)
    sys.exit(f"fuzz: {binary} is not an executable (build it: swift build -c release)")


def replay(opts):
    ort = OrtWorker()
    dirs = sorted(os.path.join(root, d) for root in [opts.replay] for d in os.listdir(root)
                  if os.path.isfile(os.path.join(root, d, "cmd.txt")))
    if os.path.isfile(os.path.join(opts.replay, "cmd.txt")):
        dirs = [opts.replay]
    failed = 0
    tmp_root = tempfile.mkdtemp(prefix="fuzz-replay-")
    binary = snapshot_binary(opts.binary, tmp_root)
    try:
        for d in dirs:
            work = os.path.join(tmp_root, os.path.basename(d))
            shutil.copytree(d, work, symlinks=True)
            args = shlex.split(open(os.path.join(d, "cmd.txt")).read())
            w = os.path.join(work, "w")
            shutil.rmtree(os.path.join(w, "out"), ignore_errors=True)
            if args[0] == "quantize":
                os.makedirs(os.path.join(w, "out"), exist_ok=True)
            rc, out, err, stack = run_binary(binary, args, w, opts.timeout * (3 if args[0] == "quantize" else 1))
            res = classify(binary, args, w, rc, out, err, stack, ort, opts.timeout)
            outcome, sig, note = res.outcome, res.signature, res.note
            bad = outcome in FINDING_OUTCOMES
            failed += bad
            print(f"{'FAIL' if bad else 'ok  '} {os.path.basename(d)}: {outcome} {sig or ''} {note[:160]}")
            if bad and opts.reminimize:
                want = sig if sig else "MISMATCH-WHAT:" + mismatch_what(note)
                before = os.path.getsize(os.path.join(w, "model.onnx"))
                n = minimize(binary, work, args, want, opts.timeout, ort, opts.minimize_seconds)
                after = os.path.getsize(os.path.join(w, "model.onnx"))
                if n and after < before:
                    shutil.copy2(os.path.join(w, "model.onnx"), os.path.join(d, "w", "model.onnx"))
                print(f"     minimized: {n} reductions, {before} -> {after} bytes")
            if bad and opts.verbose:
                print("   " + "\n   ".join(err.strip().splitlines()[-8:]))
    finally:
        ort.close()
        shutil.rmtree(tmp_root, ignore_errors=True)
    print(f"replayed {len(dirs)}: {failed} failing")
    return 1 if (opts.check and failed) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=120, help="time budget: no case starts after it")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder of the findings")
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--timeout", type=float, default=20, help="seconds per run (quantize: 3x)")
    ap.add_argument("--check", action="store_true", help="exit 1 when any CRASH/HANG/MISMATCH was found")
    ap.add_argument("--replay", metavar="DIR", help="rerun saved reproducers (folders with cmd.txt)")
    ap.add_argument("--case", type=int, action="append", help="run only this case index (repeatable)")
    ap.add_argument("--start", type=int, default=0, help="first case index")
    ap.add_argument("--max-cases", type=int, default=0)
    ap.add_argument("--only", action="append", help="only these mutation kinds (repeatable)")
    ap.add_argument("--no-real", action="store_true", help="synthetic seeds only")
    ap.add_argument("--minimize-seconds", type=float, default=60, help="per new finding (0: no minimization)")
    ap.add_argument("--keep", action="store_true", help="keep the case folders")
    ap.add_argument("--reminimize", action="store_true",
                    help="with --replay: minimize the failing reproducers again, in place")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()
    opts.binary = os.path.abspath(opts.binary)
    if opts.replay:
        sys.exit(replay(opts))
    os.makedirs(opts.out, exist_ok=True)
    seeds = load_seeds(not opts.no_real)
    print(f"fuzz: seed {opts.seed}, {opts.seconds:.0f} s, {opts.jobs} jobs, {len(seeds)} seed models "
          f"({', '.join(s.name for s in seeds)}), findings -> {opts.out}", flush=True)
    tmp_root = tempfile.mkdtemp(prefix="fuzz-")
    opts.binary = snapshot_binary(opts.binary, tmp_root)
    stats = Stats()
    t0 = time.time()
    counter = iter(opts.case) if opts.case else None
    next_index = [opts.start]
    idx_lock = threading.Lock()

    def take():
        with idx_lock:
            if counter is not None:
                return next(counter, None)
            if time.time() - t0 > opts.seconds:
                return None
            if opts.max_cases and next_index[0] - opts.start >= opts.max_cases:
                return None
            i = next_index[0]
            next_index[0] += 1
            return i

    def job():
        ort = OrtWorker()
        try:
            while True:
                i = take()
                if i is None:
                    return
                try:
                    run_case(opts, seeds, stats, i, ort, tmp_root)
                except Exception as e:  # a bug of the fuzzer is reported, not fatal
                    import traceback
                    print(f"case {i}: fuzzer error {e!r}\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        finally:
            ort.close()

    try:
        with ThreadPoolExecutor(opts.jobs) as ex:
            for f in [ex.submit(job) for _ in range(opts.jobs)]:
                f.result()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        if not opts.keep:
            shutil.rmtree(tmp_root, ignore_errors=True)
    report(stats, time.time() - t0, opts.out)
    bad = sum(stats.outcomes[o] for o in FINDING_OUTCOMES)
    sys.exit(1 if opts.check and bad else 0)


if __name__ == "__main__":
    main()
