#!/usr/bin/env python3
"""Writes the single-operator fixtures of OperatorTests into ops/ next to this script.

  python3 make_operator_fixtures.py      # onnx 1.23.2, onnxruntime 1.32.0, numpy (seeded)

Each case is a tiny ONNX model (one operator, or a 2-5 node chain) plus its inputs and
onnxruntime's outputs (CPU, ORT_DISABLE_ALL: the plain ONNX semantics, no fusions):

  ops/<case>.onnx   the model (IR 8; opset per case, 13 unless the case needs another)
  ops/<case>.npz    r<k>__in__<input> and r<k>__out__<output> for run k = 0, 1, ... (a case
                    with a dynamic input dim has several runs of different shapes, run in
                    order on one session)
  ops/cases.json    {case: {"family", "opset", "runs", "atol", "rtol", "what"}}: OperatorTests
                    checks |ours - onnxruntime| <= atol + rtol * |onnxruntime| per element
                    (0/0: exact, for pure data movement).

Every input is seeded from the case name, so the files are reproducible. Keep the sum of the
files small (~300 KB): tensors of a few hundred elements. The Swift tests never run Python.
"""
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops")

EXACT = (0.0, 0.0)
ELEMENTWISE = (1e-5, 1e-5)
REDUCTION = (1e-4, 1e-4)  # convolutions, matmuls, pooling averages, normalisations, RNNs

CASES = {}


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def case(name, family, nodes, inputs, outputs, inits=None, opset=13, tol=ELEMENTWISE,
         what="", dims=None, runs=None):
    """inputs: {name: array} for one run; runs: a list of such dicts (several shapes);
    dims: {input: [dim or str]} declared shapes (default: the first run's shapes)."""
    runs = runs or [inputs]
    first = runs[0]
    dims = dims or {}
    graph_inputs = [helper.make_tensor_value_info(
        n, helper.np_dtype_to_tensor_dtype(a.dtype), dims.get(n, list(a.shape)))
        for n, a in first.items()]
    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]

    def build(output_dims):
        graph_outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, output_dims.get(o))
                         for o in outputs]
        graph = helper.make_graph(nodes, name, graph_inputs, graph_outputs, initializer=initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="make_operator_fixtures", producer_version="1.0")
        model.ir_version = 8
        return model

    # onnxruntime runs the model with undeclared output shapes; the file declares the shapes it
    # returned (a dim that differs between runs is symbolic).
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(build({}).SerializeToString(), so, providers=["CPUExecutionProvider"])
    arrays, shapes = {}, {o: [] for o in outputs}
    for k, feed in enumerate(runs):
        outs = sess.run(outputs, feed)
        for n, a in feed.items():
            arrays[f"r{k}__in__{n}"] = a
        for n, a in zip(outputs, outs):
            a = np.asarray(a)
            assert a.dtype == np.float32, (name, n, a.dtype)
            assert np.all(np.isfinite(a)), (name, n)
            arrays[f"r{k}__out__{n}"] = a
            shapes[n].append(a.shape)
    output_dims = {o: [s[0][d] if all(x[d] == s[0][d] for x in s) else f"{o}_d{d}"
                       for d in range(len(s[0]))] for o, s in shapes.items()}
    model = build(output_dims)
    onnx.checker.check_model(model, full_check=True)
    with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
        f.write(model.SerializeToString())
    np.savez_compressed(os.path.join(HERE, name + ".npz"), **arrays)
    assert name not in CASES, name
    CASES[name] = {"family": family, "opset": opset, "runs": len(runs), "atol": tol[0],
                   "rtol": tol[1], "what": what}


def node(op, inputs, outputs, name=None, **attrs):
    return helper.make_node(op, inputs, outputs, name=name or op.lower(), **attrs)


# ----------------------------------------------------------------------------- Conv

def conv_cases():
    def conv(name, x_shape, w_shape, what, bias=True, tol=REDUCTION, op="Conv", **attrs):
        r = rng_for(name)
        fan_in = int(np.prod(w_shape[1:]))
        inits = {"w": randn(r, *w_shape, scale=fan_in ** -0.5)}
        ins = ["x", "w"]
        if bias:
            oc = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
            inits["b"] = randn(r, oc, scale=0.5)
            ins.append("b")
        case(name, "conv", [node(op, ins, ["y"], **attrs)], {"x": randn(r, *x_shape)}, ["y"],
             inits, tol=tol, what=what)

    conv("conv_basic", [1, 3, 8, 8], [5, 3, 3, 3], "3x3, pads 1, bias", pads=[1, 1, 1, 1])
    conv("conv_batch_rect", [2, 3, 7, 10], [4, 3, 3, 5], "batch 2, 3x5 kernel, no pads")
    conv("conv_groups", [1, 4, 7, 7], [6, 2, 3, 3], "group 2, no bias", bias=False, group=2,
         pads=[1, 1, 1, 1])
    conv("conv_depthwise", [1, 4, 9, 9], [4, 1, 3, 3], "depthwise (group = C = OC)", group=4,
         pads=[1, 1, 1, 1])
    conv("conv_depthwise_mult2", [1, 3, 8, 8], [6, 1, 3, 3], "depthwise, channel multiplier 2",
         group=3, strides=[2, 2], pads=[1, 1, 1, 1])
    conv("conv_dilation", [1, 2, 9, 9], [3, 2, 3, 3], "dilations 2, pads 2", dilations=[2, 2],
         pads=[2, 2, 2, 2])
    conv("conv_dilation_asym", [1, 2, 12, 9], [3, 2, 3, 2], "dilations [3,2], no pads",
         dilations=[3, 2])
    conv("conv_strides_pads", [1, 3, 9, 10], [4, 3, 3, 3], "strides [2,3], pads [1,0,2,1]",
         strides=[2, 3], pads=[1, 0, 2, 1])
    conv("conv_same_upper", [1, 3, 8, 8], [4, 3, 3, 3], "auto_pad SAME_UPPER stride 2 (odd total pad)",
         auto_pad="SAME_UPPER", strides=[2, 2])
    conv("conv_same_lower", [1, 3, 8, 8], [4, 3, 3, 3], "auto_pad SAME_LOWER stride 2 (odd total pad)",
         auto_pad="SAME_LOWER", strides=[2, 2])
    conv("conv_same_upper_k4", [1, 2, 7, 7], [3, 2, 4, 4], "auto_pad SAME_UPPER kernel 4 stride 1",
         auto_pad="SAME_UPPER")
    conv("conv_same_lower_k4", [1, 2, 7, 7], [3, 2, 4, 4], "auto_pad SAME_LOWER kernel 4 stride 1",
         auto_pad="SAME_LOWER")
    conv("conv_valid", [1, 3, 9, 8], [4, 3, 3, 3], "auto_pad VALID stride 2", auto_pad="VALID",
         strides=[2, 2])
    conv("conv1d", [2, 3, 16], [4, 3, 5], "1-D, stride 2, pads 2", strides=[2], pads=[2, 2])
    conv("conv1d_dilated_groups", [1, 4, 20], [6, 2, 3], "1-D, dilation 2, group 2", dilations=[2],
         group=2, pads=[1, 3])
    conv("conv_1x1", [1, 8, 5, 5], [4, 8, 1, 1], "1x1 pointwise")

    def deconv(name, x_shape, w_shape, what, **attrs):
        conv(name, x_shape, w_shape, what, op="ConvTranspose", **attrs)

    deconv("convtranspose_basic", [1, 3, 5, 5], [3, 4, 3, 3], "stride 1, bias")
    deconv("convtranspose_s2", [1, 4, 5, 5], [4, 3, 3, 3], "stride 2, pads 1, output_padding 1",
           strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    deconv("convtranspose_s2_k4", [1, 3, 4, 6], [3, 2, 4, 4], "stride 2, kernel 4, pads 1 (2x up)",
           strides=[2, 2], pads=[1, 1, 1, 1])
    deconv("convtranspose_groups", [1, 4, 4, 4], [4, 3, 3, 3], "group 2, stride 2, output_padding [1,0]",
           group=2, strides=[2, 2], output_padding=[1, 0])
    deconv("convtranspose1d", [1, 2, 7], [2, 3, 3], "1-D, stride 3", strides=[3])
    deconv("convtranspose_output_shape", [1, 3, 4, 4], [3, 2, 3, 3], "stride 2, output_shape [9,8]",
           strides=[2, 2], output_shape=[9, 8])
    deconv("convtranspose_same_upper", [1, 2, 3, 5], [2, 2, 4, 4], "stride 2, auto_pad SAME_UPPER",
           strides=[2, 2], auto_pad="SAME_UPPER")
    deconv("convtranspose_same_lower", [1, 2, 3, 5], [2, 2, 3, 3], "stride 2, auto_pad SAME_LOWER",
           strides=[2, 2], auto_pad="SAME_LOWER")
    deconv("convtranspose_dilation", [1, 2, 4, 4], [2, 3, 3, 3], "dilations 2, stride 2, pads 1",
           strides=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])
    conv("conv_blocked16", [1, 16, 4, 4], [16, 8, 3, 3], "16 -> 16 channels, group 2 (blocked layouts)", group=2,
         pads=[1, 1, 1, 1])


# ----------------------------------------------------------------------------- Gemm / MatMul

def matmul_cases():
    def gemm(name, a_shape, b_shape, c_shape, what, **attrs):
        r = rng_for(name)
        inits = {"b": randn(r, *b_shape)}
        ins = ["a", "b"]
        if c_shape is not None:
            inits["c"] = randn(r, *c_shape)
            ins.append("c")
        case(name, "matmul", [node("Gemm", ins, ["y"], **attrs)], {"a": randn(r, *a_shape)}, ["y"],
             inits, tol=REDUCTION, what=what)

    gemm("gemm_basic", [3, 5], [5, 4], [4], "C [N]")
    gemm("gemm_transB_alpha_beta", [3, 5], [4, 5], [3, 4], "transB, alpha 0.5, beta 2, C [M,N]",
         transB=1, alpha=0.5, beta=2.0)
    gemm("gemm_transA", [5, 3], [5, 4], [1, 4], "transA, C [1,N]", transA=1)
    gemm("gemm_transA_transB", [6, 2], [3, 6], [2, 3], "transA and transB, alpha 1.5, C [M,N]",
         transA=1, transB=1, alpha=1.5)
    gemm("gemm_no_c", [4, 8], [8, 3], None, "no C")
    gemm("gemm_scalar_c", [2, 3], [3, 4], [1], "C [1], beta 0.5", beta=0.5)

    def matmul(name, a_shape, b_shape, what, b_const):
        r = rng_for(name)
        a, b = randn(r, *a_shape), randn(r, *b_shape)
        if b_const:
            case(name, "matmul", [node("MatMul", ["a", "b"], ["y"])], {"a": a}, ["y"], {"b": b},
                 tol=REDUCTION, what=what)
        else:
            case(name, "matmul", [node("MatMul", ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"],
                 tol=REDUCTION, what=what)

    matmul("matmul_2d_const", [3, 5], [5, 4], "2-D x constant 2-D", True)
    matmul("matmul_3d_const", [2, 3, 5], [5, 4], "3-D x constant 2-D", True)
    matmul("matmul_2d_runtime", [4, 6], [6, 3], "2-D x run-time 2-D", False)
    matmul("matmul_batched_3d", [2, 3, 5], [2, 5, 4], "batched 3-D x 3-D, both run-time", False)
    matmul("matmul_4d_broadcast_b", [2, 3, 4, 5], [3, 5, 6], "4-D x 3-D run-time (B broadcast)", False)
    matmul("matmul_4d_broadcast_both", [1, 3, 4, 5], [2, 1, 5, 6], "[1,3,..] x [2,1,..] (both broadcast)", False)
    matmul("matmul_4d_const_b", [2, 2, 3, 4], [2, 4, 5], "4-D x constant 3-D", True)
    matmul("matmul_1d_left_const", [5], [5, 4], "1-D x constant 2-D", True)
    matmul("matmul_1d_right_const", [3, 5], [5], "2-D x constant 1-D", True)
    matmul("matmul_1d_right_runtime", [2, 3, 5], [5], "3-D x run-time 1-D", False)
    matmul("matmul_1d_left_runtime", [4], [2, 4, 3], "1-D x run-time 3-D", False)
    matmul("matmul_1d_1d", [6], [6], "1-D x 1-D (scalar result)", False)
    r = rng_for("matmul_const_a")
    case("matmul_const_a", "matmul", [node("MatMul", ["a", "b"], ["y"])], {"b": randn(r, 2, 4, 5)}, ["y"],
         {"a": randn(r, 3, 4)}, tol=REDUCTION, what="constant 2-D A x run-time 3-D B")


# ----------------------------------------------------------------------------- binary

def binary_cases():
    def binop(name, op, a, b, what, const=None, tol=ELEMENTWISE):
        """a, b: (shape, kind) kind = 'in' (run-time), 'const' (initializer), or an array."""
        r = rng_for(name)
        feeds, inits = {}, {}
        for n, (shape, kind) in (("a", a), ("b", b)):
            if isinstance(kind, np.ndarray):
                inits[n] = kind
                continue
            v = randn(r, *shape)
            if op in ("Div", "Pow") and n == "b":
                v = (np.abs(v) + 0.5) * np.sign(v + 1e-9)
            if kind == "const":
                inits[n] = v
            else:
                feeds[n] = v
        case(name, "binary", [node(op, ["a", "b"], ["y"])], feeds, ["y"], inits, tol=tol, what=what)

    full = [2, 3, 4, 5]
    binop("add_same", "Add", (full, "in"), (full, "in"), "same shapes")
    binop("add_bcast_right", "Add", (full, "in"), ([3, 1, 1], "in"), "[2,3,4,5] + [3,1,1]")
    binop("add_bcast_left", "Add", ([3, 1, 1], "in"), (full, "in"), "[3,1,1] + [2,3,4,5]")
    binop("add_const_channel", "Add", (full, "in"), ([1, 3, 1, 1], "const"), "+ constant [1,3,1,1]")
    binop("add_outer", "Add", ([4, 1], "in"), ([1, 5], "in"), "[4,1] + [1,5] (both broadcast)")
    binop("sub_bcast_right", "Sub", (full, "in"), ([5], "in"), "[2,3,4,5] - [5]")
    binop("sub_bcast_left", "Sub", ([4, 5], "in"), (full, "in"), "[4,5] - [2,3,4,5]")
    binop("sub_const_first", "Sub", ([3], "const"), ([2, 3], "in"), "constant [3] - [2,3]")
    binop("sub_outer", "Sub", ([3, 1, 4], "in"), ([2, 1], "in"), "[3,1,4] - [2,1] (both broadcast)")
    binop("mul_bcast_right", "Mul", (full, "in"), ([4, 1], "in"), "[2,3,4,5] * [4,1]")
    binop("mul_bcast_left", "Mul", ([1, 3, 1, 5], "in"), (full, "in"), "[1,3,1,5] * [2,3,4,5]")
    binop("mul_outer", "Mul", ([2, 1, 3], "in"), ([1, 4, 1], "in"), "[2,1,3] * [1,4,1]")
    binop("div_bcast_right", "Div", (full, "in"), ([1, 3, 1, 1], "in"), "[2,3,4,5] / [1,3,1,1]")
    binop("div_bcast_left", "Div", ([3, 1, 1], "in"), (full, "in"), "[3,1,1] / [2,3,4,5]")
    binop("div_outer", "Div", ([4, 1], "in"), ([1, 6], "in"), "[4,1] / [1,6]")
    binop("div_const", "Div", ([2, 3, 4], "in"), ([4], "const"), "/ constant [4]")
    # Scalar constants (rank 0 and [1]) on either side: eltwise linear / pow forms.
    binop("scalar_one_minus_x", "Sub", ([], np.array(1.0, np.float32)), ([2, 3, 4], "in"), "1 - x")
    binop("scalar_six_div_x", "Div", ([], np.array(6.0, np.float32)), ([2, 3, 4], "in"), "6 / x")
    binop("scalar_x_minus_half", "Sub", ([2, 3, 4], "in"), ([], np.array([0.5], np.float32)), "x - 0.5 ([1])")
    binop("scalar_x_div_four", "Div", ([2, 3, 4], "in"), ([], np.array(4.0, np.float32)), "x / 4")
    binop("scalar_two_plus_x", "Add", ([], np.array([2.0], np.float32)), ([3, 5], "in"), "2 + x ([1] first)")
    binop("scalar_x_times_three", "Mul", ([3, 5], "in"), ([], np.array(-3.0, np.float32)), "x * -3")
    binop("scalar_three_times_x", "Mul", ([], np.array(3.0, np.float32)), ([3, 5], "in"), "3 * x")
    binop("scalar_x_plus_const", "Add", ([2, 3], "in"), ([], np.array(0.25, np.float32)), "x + 0.25")
    binop("max_bcast", "Max", ([2, 3, 4], "in"), ([3, 1], "in"), "Max [2,3,4], [3,1]")
    binop("min_bcast_left", "Min", ([4], "in"), ([2, 3, 4], "in"), "Min [4], [2,3,4]")
    binop("max_scalar", "Max", ([2, 3], "in"), ([], np.array(0.1, np.float32)), "Max(x, 0.1)")
    binop("add_rank0_const_vec", "Add", ([3, 4], "in"), ([], np.array([[[0.5]]], np.float32)),
          "x [3,4] + constant [1,1,1] (one element, higher rank)")


# ----------------------------------------------------------------------------- pooling

def pooling_cases():
    def pool(name, op, x_shape, what, tol=REDUCTION, **attrs):
        r = rng_for(name)
        case(name, "pooling", [node(op, ["x"], ["y"], **attrs)], {"x": randn(r, *x_shape)}, ["y"],
             tol=tol, what=what)

    pool("maxpool_basic", "MaxPool", [1, 3, 8, 8], "2x2 stride 2", EXACT, kernel_shape=[2, 2], strides=[2, 2])
    pool("maxpool_pads_strides", "MaxPool", [1, 2, 9, 9], "3x3 stride 2 pads 1", EXACT,
         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    pool("maxpool_asym_pads", "MaxPool", [1, 2, 7, 8], "3x2 strides [1,2] pads [0,1,2,0]", EXACT,
         kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0])
    pool("maxpool_ceil", "MaxPool", [1, 2, 8, 8], "3x3 stride 2 ceil_mode 1", EXACT,
         kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    pool("maxpool_ceil_pads", "MaxPool", [1, 2, 10, 7], "3x3 stride 2 pads 1 ceil_mode 1", EXACT,
         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    pool("maxpool_same_upper", "MaxPool", [1, 2, 7, 7], "3x3 stride 2 SAME_UPPER", EXACT,
         kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
    pool("maxpool1d", "MaxPool", [2, 3, 11], "1-D kernel 3 stride 2", EXACT, kernel_shape=[3], strides=[2])
    pool("avgpool_exclude_pad", "AveragePool", [1, 2, 9, 9], "3x3 stride 2 pads 1 count_include_pad 0",
         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)
    pool("avgpool_include_pad", "AveragePool", [1, 2, 9, 9], "3x3 stride 2 pads 1 count_include_pad 1",
         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    pool("avgpool_asym_pads", "AveragePool", [1, 2, 6, 7], "2x3 pads [1,0,0,2] count_include_pad 0",
         kernel_shape=[2, 3], pads=[1, 0, 0, 2])
    pool("avgpool_ceil", "AveragePool", [1, 2, 8, 8], "3x3 stride 2 ceil_mode 1",
         kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    pool("avgpool_ceil_include_pad", "AveragePool", [1, 2, 8, 8], "3x3 stride 2 pads 1 ceil_mode 1 count_include_pad 1",
         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)
    pool("avgpool_ceil_exclude_pad", "AveragePool", [1, 2, 8, 8], "3x3 stride 2 pads 1 ceil_mode 1",
         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    pool("maxpool_dilations", "MaxPool", [1, 2, 9, 9], "3x3 dilations 2", EXACT,
         kernel_shape=[3, 3], dilations=[2, 2])
    pool("globalavgpool", "GlobalAveragePool", [2, 3, 5, 7], "GlobalAveragePool")
    pool("globalmaxpool", "GlobalMaxPool", [2, 3, 5, 7], "GlobalMaxPool", EXACT)


# ----------------------------------------------------------------------------- layout

def layout_cases():
    r = rng_for("concat_axis1")
    case("concat_axis1", "layout", [node("Concat", ["x", "c"], ["y"], axis=1)],
         {"x": randn(r, 1, 2, 3, 3)}, ["y"], {"c": randn(r, 1, 3, 3, 3)}, tol=EXACT,
         what="axis 1 with a constant input")
    r = rng_for("concat_neg_axis")
    case("concat_neg_axis", "layout", [node("Concat", ["x", "c", "z"], ["y"], axis=-1)],
         {"x": randn(r, 2, 3, 4), "z": randn(r, 2, 3, 2)}, ["y"], {"c": randn(r, 2, 3, 1)},
         tol=EXACT, what="axis -1, three inputs, constant in the middle")
    r = rng_for("concat_axis0")
    case("concat_axis0", "layout", [node("Concat", ["x", "z"], ["y"], axis=0)],
         {"x": randn(r, 1, 4), "z": randn(r, 3, 4)}, ["y"], tol=EXACT, what="axis 0")

    r = rng_for("split_equal")
    case("split_equal", "layout", [node("Split", ["x"], ["y0", "y1", "y2"], axis=1)],
         {"x": randn(r, 2, 6, 3)}, ["y0", "y1", "y2"], tol=EXACT, what="3 equal parts along axis 1")
    r = rng_for("split_sizes")
    case("split_sizes", "layout", [node("Split", ["x", "s"], ["y0", "y1", "y2"], axis=-1)],
         {"x": randn(r, 2, 3, 6)}, ["y0", "y1", "y2"], {"s": np.array([1, 2, 3], np.int64)},
         tol=EXACT, what="sizes [1,2,3] along axis -1 (opset 13 input)")
    r = rng_for("split_attr_opset11")
    case("split_attr_opset11", "layout", [node("Split", ["x"], ["y0", "y1"], axis=0, split=[3, 1])],
         {"x": randn(r, 4, 5)}, ["y0", "y1"], opset=11, tol=EXACT, what="split attribute (opset 11)")

    def slice_case(name, shape, starts, ends, axes=None, steps=None, what=""):
        r = rng_for(name)
        inits = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64)}
        ins = ["x", "starts", "ends"]
        if axes is not None:
            inits["axes"] = np.array(axes, np.int64)
            ins.append("axes")
        if steps is not None:
            inits["steps"] = np.array(steps, np.int64)
            ins.append("steps")
        case(name, "layout", [node("Slice", ins, ["y"])], {"x": randn(r, *shape)}, ["y"], inits,
             tol=EXACT, what=what)

    slice_case("slice_neg_starts_axes", [3, 8, 6], [1, -4], [3, -1], [0, 2], what="negative starts/ends, axes [0,2]")
    slice_case("slice_neg_axes", [2, 5, 7], [-3], [2 ** 62], [-2], what="axes [-2], start -3, end INT_MAX")
    slice_case("slice_all_axes", [4, 6], [1, 2], [3, 5], what="no axes input")
    slice_case("slice_clamped", [3, 4], [-10, 1], [10, 100], [0, 1], what="out-of-range starts/ends clamp")

    def view(name, op, shape, what, inits=None, ins=None, opset=13, **attrs):
        r = rng_for(name)
        case(name, "layout", [node(op, ins or ["x"], ["y"], **attrs)], {"x": randn(r, *shape)}, ["y"],
             inits, opset=opset, tol=EXACT, what=what)

    view("reshape_zero_neg1", "Reshape", [2, 3, 4], "shape [0,-1]",
         {"s": np.array([0, -1], np.int64)}, ["x", "s"])
    view("reshape_zero_mid", "Reshape", [2, 3, 4], "shape [0,2,-1,2]",
         {"s": np.array([0, 2, -1, 2], np.int64)}, ["x", "s"])
    view("flatten_axis2", "Flatten", [2, 3, 4, 5], "axis 2", axis=2)
    view("flatten_default", "Flatten", [2, 3, 4], "axis 1 (default)")
    view("squeeze_axes", "Squeeze", [1, 3, 1, 4], "axes [0,2] (opset 13 input)",
         {"axes": np.array([0, 2], np.int64)}, ["x", "axes"])
    view("squeeze_all", "Squeeze", [1, 3, 1, 4], "no axes: every 1")
    view("squeeze_opset11", "Squeeze", [3, 1, 4, 1], "axes attribute [-1] (opset 11)", opset=11, axes=[-1])
    view("unsqueeze_axes", "Unsqueeze", [3, 4], "axes [0,-1] (opset 13 input)",
         {"axes": np.array([0, -1], np.int64)}, ["x", "axes"])
    view("unsqueeze_opset11", "Unsqueeze", [3, 4], "axes attribute [1] (opset 11)", opset=11, axes=[1])
    view("transpose_nhwc", "Transpose", [2, 3, 4, 5], "perm [0,2,3,1]", perm=[0, 2, 3, 1])
    view("transpose_rank4_mixed", "Transpose", [2, 3, 4, 5], "perm [3,1,0,2]", perm=[3, 1, 0, 2])
    view("transpose_default", "Transpose", [2, 3, 4], "no perm: reversed")
    view("tile", "Tile", [2, 3, 2], "repeats [2,1,3]", {"r": np.array([2, 1, 3], np.int64)}, ["x", "r"])
    view("pad_constant", "Pad", [2, 3, 4], "constant 1.5, pads [0,1,2,1,0,1]",
         {"p": np.array([0, 1, 2, 1, 0, 1], np.int64), "v": np.array(1.5, np.float32)}, ["x", "p", "v"],
         mode="constant")
    view("pad_constant_zero", "Pad", [1, 2, 3], "constant, default value 0",
         {"p": np.array([0, 0, 1, 0, 1, 2], np.int64)}, ["x", "p"])
    view("pad_reflect", "Pad", [2, 4, 5], "reflect, pads [0,2,1,0,1,3]",
         {"p": np.array([0, 2, 1, 0, 1, 3], np.int64)}, ["x", "p"], mode="reflect")
    view("pad_edge", "Pad", [2, 3, 3], "edge, pads [0,1,2,0,2,1]",
         {"p": np.array([0, 1, 2, 0, 2, 1], np.int64)}, ["x", "p"], mode="edge")
    view("cast_f32", "Cast", [2, 3], "f32 -> f32", to=TensorProto.FLOAT)
    view("identity", "Identity", [2, 3], "graph input straight to output")
    view("gather_const_indices", "Gather", [4, 5], "constant indices [[3,0],[1,1]] axis 0",
         {"i": np.array([[3, 0], [1, 1]], np.int64)}, ["x", "i"], axis=0)
    view("gather_axis1_scalar", "Gather", [2, 5, 3], "constant scalar index -1 axis 1",
         {"i": np.array(-1, np.int64)}, ["x", "i"], axis=1)
    view("expand", "Expand", [3, 1], "to [2,3,4]", {"s": np.array([2, 3, 4], np.int64)}, ["x", "s"])

    # Shape arithmetic on a dynamic dim, folded at plan time: y = Relu(Reshape(x, [N, 12])).
    nodes = [
        node("Shape", ["x"], ["shape"]),
        node("Gather", ["shape", "zero"], ["n"], axis=0),
        node("Unsqueeze", ["n", "axes0"], ["n1"]),
        node("Concat", ["n1", "twelve"], ["target"], axis=0),
        node("Reshape", ["x", "target"], ["r"]),
        node("Relu", ["r"], ["y"]),
    ]
    inits = {"zero": np.array(0, np.int64), "axes0": np.array([0], np.int64),
             "twelve": np.array([12], np.int64)}
    r = rng_for("shape_chain")
    case("shape_chain", "layout", nodes, None, ["y"], inits, tol=EXACT,
         what="Shape->Gather->Unsqueeze->Concat->Reshape with a dynamic batch (runs N=2, 5, 2)",
         dims={"x": ["N", 3, 4]},
         runs=[{"x": randn(r, 2, 3, 4)}, {"x": randn(r, 5, 3, 4)}, {"x": randn(r, 2, 3, 4)}])


# ----------------------------------------------------------------------------- Resize

def resize_cases():
    def resize(name, shape, what, scales=None, sizes=None, tol=EXACT, **attrs):
        r = rng_for(name)
        inits = {"roi": np.array([], np.float32)}
        ins = ["x", "roi"]
        if scales is not None:
            inits["scales"] = np.array(scales, np.float32)
            ins.append("scales")
        else:
            inits["scales"] = np.array([], np.float32)
            inits["sizes"] = np.array(sizes, np.int64)
            ins += ["scales", "sizes"]
        case(name, "resize", [node("Resize", ins, ["y"], mode="nearest", **attrs)],
             {"x": randn(r, *shape)}, ["y"], inits, tol=tol, what=what)

    resize("resize_asym_floor_2x", [1, 2, 3, 4], "asymmetric/floor, scales 2 (oneDNN path)",
           scales=[1, 1, 2, 2], coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    resize("resize_asym_floor_3x2", [1, 2, 3, 4], "asymmetric/floor, scales [3,2]",
           scales=[1, 1, 3, 2], coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    resize("resize_half_pixel_2x", [1, 2, 3, 4], "half_pixel/round_prefer_floor (defaults), scales 2",
           scales=[1, 1, 2, 2])
    resize("resize_half_pixel_1p5", [1, 2, 4, 6], "half_pixel/round_prefer_floor, scales 1.5 (Swift path)",
           scales=[1, 1, 1.5, 1.5], coordinate_transformation_mode="half_pixel",
           nearest_mode="round_prefer_floor")
    resize("resize_asym_floor_1p5", [1, 1, 4, 4], "asymmetric/floor, scales 1.5",
           scales=[1, 1, 1.5, 1.5], coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    resize("resize_sizes", [1, 2, 4, 3], "sizes [1,2,7,5] (half_pixel/round_prefer_floor)",
           sizes=[1, 2, 7, 5])
    resize("resize_sizes_down", [1, 2, 6, 9], "sizes [1,2,4,3] (downscale)", sizes=[1, 2, 4, 3])
    resize("resize_half_pixel_floor_2x", [1, 2, 3, 4], "half_pixel/floor, scales 2",
           scales=[1, 1, 2, 2], coordinate_transformation_mode="half_pixel", nearest_mode="floor")
    resize("resize_half_pixel_ceil_2x", [1, 2, 3, 4], "half_pixel/ceil, scales 2",
           scales=[1, 1, 2, 2], coordinate_transformation_mode="half_pixel", nearest_mode="ceil")
    resize("resize_half_pixel_3x2", [1, 2, 3, 4], "half_pixel/round_prefer_floor, scales [3,2]",
           scales=[1, 1, 3, 2])
    resize("resize_asym_round_2x", [1, 2, 3, 4], "asymmetric/round_prefer_floor, scales 2",
           scales=[1, 1, 2, 2], coordinate_transformation_mode="asymmetric")
    resize("resize_align_corners", [1, 1, 3, 4], "align_corners/round_prefer_ceil, scales 2",
           scales=[1, 1, 2, 2], coordinate_transformation_mode="align_corners",
           nearest_mode="round_prefer_ceil")


# ----------------------------------------------------------------------------- activations

def activation_cases():
    def act(name, op, shape, what, opset=13, inits=None, ins=None, positive=False, tol=ELEMENTWISE,
            **attrs):
        r = rng_for(name)
        x = randn(r, *shape, scale=3.0)
        if positive:
            x = np.abs(x) + 0.05
        case(name, "activation", [node(op, ins or ["x"], ["y"], **attrs)], {"x": x}, ["y"], inits,
             opset=opset, tol=tol, what=what)

    act("relu", "Relu", [2, 3, 4, 5], "Relu", tol=EXACT)
    act("leaky_relu", "LeakyRelu", [2, 3, 4], "alpha 0.1", alpha=0.1)
    act("clip_opset11", "Clip", [2, 3, 4], "min -1, max 2 as inputs (opset 11)", opset=11,
        inits={"lo": np.array(-1.0, np.float32), "hi": np.array(2.0, np.float32)}, ins=["x", "lo", "hi"])
    act("clip_max_only", "Clip", [2, 3, 4], "only max 6 (min omitted)", opset=13,
        inits={"hi": np.array(6.0, np.float32)}, ins=["x", "", "hi"])
    act("clip_opset10_attrs", "Clip", [2, 3, 4], "min/max attributes (opset 10)", opset=10,
        min=0.0, max=6.0)
    act("hardsigmoid", "HardSigmoid", [2, 3, 4], "alpha 0.3, beta 0.4", alpha=0.3, beta=0.4)
    act("hardsigmoid_default", "HardSigmoid", [2, 3, 4], "defaults 0.2/0.5")
    act("hardswish", "HardSwish", [2, 3, 4, 5], "opset 14", opset=14)
    act("sigmoid", "Sigmoid", [2, 3, 4], "Sigmoid")
    act("tanh", "Tanh", [2, 3, 4], "Tanh")
    act("erf", "Erf", [2, 3, 4], "Erf")
    act("sqrt", "Sqrt", [2, 3, 4], "positive input", positive=True)
    act("exp", "Exp", [2, 3], "Exp")
    act("pow_2", "Pow", [2, 3, 4], "exponent 2", inits={"e": np.array(2.0, np.float32)}, ins=["x", "e"])
    act("pow_half", "Pow", [2, 3, 4], "exponent 0.5", inits={"e": np.array(0.5, np.float32)},
        ins=["x", "e"], positive=True)
    act("softmax_opset11_axis1", "Softmax", [2, 3, 4], "opset 11 axis 1 on rank 3 (2-D coercion)",
        opset=11, tol=REDUCTION, axis=1)
    act("softmax_opset11_default", "Softmax", [2, 3, 4], "opset 11 default axis (1) on rank 3",
        opset=11, tol=REDUCTION)
    act("softmax_opset13_last", "Softmax", [2, 3, 4], "opset 13 axis -1", opset=13, tol=REDUCTION, axis=-1)
    act("softmax_opset13_axis1", "Softmax", [2, 3, 4], "opset 13 axis 1 (not coerced)", opset=13,
        tol=REDUCTION, axis=1)


# ----------------------------------------------------------------------------- normalisation

def normalization_cases():
    r = rng_for("batchnorm")
    c = 3
    case("batchnorm", "normalization",
         [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
         {"x": randn(r, 2, c, 4, 4)}, ["y"],
         {"s": randn(r, c), "b": randn(r, c), "m": randn(r, c),
          "v": (np.abs(randn(r, c)) + 0.5).astype(np.float32)}, tol=REDUCTION,
         what="epsilon 1e-3")
    for name, axis, shape in (("layernorm_last", -1, [2, 3, 8]), ("layernorm_axis1", 1, [2, 3, 4])):
        r = rng_for(name)
        inner = shape[axis:] if axis >= 0 else shape[axis:]
        case(name, "normalization",
             [node("LayerNormalization", ["x", "s", "b"], ["y"], axis=axis, epsilon=1e-5)],
             {"x": randn(r, *shape, scale=2.0)}, ["y"],
             {"s": randn(r, *inner), "b": randn(r, *inner)}, opset=17, tol=REDUCTION,
             what=f"opset 17, axis {axis}")

    def reduce(name, shape, what, opset=13, ins=None, inits=None, **attrs):
        r = rng_for(name)
        case(name, "normalization", [node("ReduceMean", ins or ["x"], ["y"], **attrs)],
             {"x": randn(r, *shape)}, ["y"], inits, opset=opset, tol=REDUCTION, what=what)

    reduce("reducemean_keepdims1", [2, 3, 4], "axes [1], keepdims 1", axes=[1], keepdims=1)
    reduce("reducemean_keepdims0", [2, 3, 4, 5], "axes [2,3], keepdims 0", axes=[2, 3], keepdims=0)
    reduce("reducemean_neg_axis", [2, 3, 4], "axes [-1] (keepdims default 1)", axes=[-1])
    reduce("reducemean_all", [2, 3, 4], "no axes: every axis, keepdims 0", keepdims=0)
    reduce("reducemean_opset18_input", [2, 3, 4], "opset 18 axes input [0,2]", opset=18,
           ins=["x", "axes"], inits={"axes": np.array([0, 2], np.int64)}, keepdims=1)


# ----------------------------------------------------------------------------- RNN

def rnn_cases():
    t, n, i, h = 5, 2, 3, 4

    def lstm(name, direction, what):
        r = rng_for(name)
        d = 2 if direction == "bidirectional" else 1
        inits = {"W": randn(r, d, 4 * h, i, scale=0.5), "R": randn(r, d, 4 * h, h, scale=0.5),
                 "B": randn(r, d, 8 * h, scale=0.3)}
        feeds = {"X": randn(r, t, n, i), "h0": randn(r, d, n, h, scale=0.5),
                 "c0": randn(r, d, n, h, scale=0.5)}
        case(name, "rnn",
             [node("LSTM", ["X", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h", "Y_c"],
                   hidden_size=h, direction=direction)],
             feeds, ["Y", "Y_h", "Y_c"], inits, opset=14, tol=REDUCTION, what=what)

    lstm("lstm_forward", "forward", "forward, initial h/c, Y/Y_h/Y_c")
    lstm("lstm_reverse", "reverse", "reverse, initial h/c, Y/Y_h/Y_c")
    lstm("lstm_bidirectional", "bidirectional", "bidirectional, initial h/c, Y/Y_h/Y_c")

    r = rng_for("lstm_no_bias_no_state")
    case("lstm_no_bias_no_state", "rnn",
         [node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=h)],
         {"X": randn(r, t, n, i)}, ["Y"],
         {"W": randn(r, 1, 4 * h, i, scale=0.5), "R": randn(r, 1, 4 * h, h, scale=0.5)},
         opset=14, tol=REDUCTION, what="no B, zero initial state, Y only")

    def gru(name, direction, lbr, what, initial=True):
        r = rng_for(name)
        d = 2 if direction == "bidirectional" else 1
        inits = {"W": randn(r, d, 3 * h, i, scale=0.5), "R": randn(r, d, 3 * h, h, scale=0.5),
                 "B": randn(r, d, 6 * h, scale=0.3)}
        feeds = {"X": randn(r, t, n, i)}
        ins = ["X", "W", "R", "B"]
        if initial:
            feeds["h0"] = randn(r, d, n, h, scale=0.5)
            ins += ["", "h0"]
        case(name, "rnn",
             [node("GRU", ins, ["Y", "Y_h"], hidden_size=h, direction=direction,
                   linear_before_reset=lbr)],
             feeds, ["Y", "Y_h"], inits, opset=14, tol=REDUCTION, what=what)

    gru("gru_lbr0", "forward", 0, "linear_before_reset 0, initial h")
    gru("gru_lbr1", "forward", 1, "linear_before_reset 1, initial h")
    gru("gru_bidirectional_lbr1", "bidirectional", 1, "bidirectional, linear_before_reset 1")
    gru("gru_bidirectional_lbr0", "bidirectional", 0, "bidirectional, linear_before_reset 0, zero state",
        initial=False)
    gru("gru_reverse_lbr1", "reverse", 1, "reverse, linear_before_reset 1")


# ----------------------------------------------------------------------------- chains

def chain_cases():
    """2-3 node chains where blocked oneDNN layouts (16 channels) meet other kernels."""
    def chain(name, nodes, x_shape, what, inits, tol=REDUCTION, outputs=("y",), extra=None, opset=13):
        r = rng_for(name)
        feeds = {"x": randn(r, *x_shape)}
        feeds.update({k: randn(r, *v) for k, v in (extra or {}).items()})
        case(name, "chain", nodes, feeds, list(outputs),
             {k: (v(r) if callable(v) else v) for k, v in inits.items()}, opset=opset, tol=tol, what=what)

    # 1x1 kernels unless a case needs more: 16 channels are enough for blocked layouts.
    w = lambda oc, ic, k=1: (lambda r: randn(r, oc, ic, k, k, scale=(ic * k * k) ** -0.5))
    b = lambda n: (lambda r: randn(r, n, scale=0.5))
    conv = lambda out, inp="x", wn="w", bn="b", k=1, **a: node(
        "Conv", [inp, wn, bn], [out], name="conv_" + out, pads=[k // 2] * 4, **a)
    chain("chain_conv_relu_maxpool", [conv("c"), node("Relu", ["c"], ["r"]),
                                      node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
          [1, 16, 4, 4], "Conv -> Relu -> MaxPool", {"w": w(16, 16), "b": b(16)})
    chain("chain_conv_residual_add", [conv("c"), node("Add", ["c", "x"], ["s"]), node("Relu", ["s"], ["y"])],
          [1, 16, 4, 4], "Conv + x -> Relu (residual)", {"w": w(16, 16), "b": b(16)})
    chain("chain_conv_mul_channel", [conv("c"), node("Mul", ["c", "m"], ["y"])],
          [1, 16, 3, 3], "Conv * constant [16,1,1]", {"w": w(16, 16), "b": b(16),
                                                       "m": lambda r: randn(r, 16, 1, 1)})
    chain("chain_conv_bn_relu", [conv("c"), node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"]),
                                 node("Relu", ["n"], ["y"])],
          [1, 16, 4, 4], "Conv -> BatchNormalization -> Relu", {
              "w": w(16, 16), "b": b(16), "s": b(16), "bb": b(16), "m": b(16),
              "v": lambda r: (np.abs(randn(r, 16)) + 0.5).astype(np.float32)})
    chain("chain_conv_transpose_nhwc", [conv("c"), node("Transpose", ["c"], ["y"], perm=[0, 2, 3, 1])],
          [1, 16, 4, 5], "Conv -> Transpose to NHWC", {"w": w(16, 16), "b": b(16)})
    chain("chain_conv_flatten_gemm", [conv("c", strides=[2, 2]), node("Flatten", ["c"], ["f"]),
                                      node("Gemm", ["f", "g", "gb"], ["y"], transB=1)],
          [2, 16, 4, 4], "Conv -> Flatten -> Gemm", {"w": w(16, 16), "b": b(16),
                                                     "g": lambda r: randn(r, 5, 64, scale=0.125),
                                                     "gb": b(5)})
    chain("chain_conv_concat_input", [conv("c"), node("Concat", ["c", "x"], ["y"], axis=1)],
          [1, 16, 3, 3], "Conv -> Concat with the graph input", {"w": w(16, 16), "b": b(16)})
    chain("chain_conv_split", [conv("c"), node("Split", ["c"], ["y0", "y1"], axis=1)],
          [1, 16, 4, 4], "Conv -> Split channels 8/8", {"w": w(16, 16), "b": b(16)}, outputs=("y0", "y1"))
    chain("chain_conv_resize_1p5", [conv("c"),
                                    node("Resize", ["c", "roi", "sc"], ["y"], mode="nearest")],
          [1, 16, 4, 4], "Conv -> Resize x1.5 (Swift kernel)", {
              "w": w(16, 16), "b": b(16), "roi": np.array([], np.float32),
              "sc": np.array([1, 1, 1.5, 1.5], np.float32)})
    chain("chain_conv_softmax", [conv("c"), node("Softmax", ["c"], ["y"], axis=1)],
          [1, 16, 3, 3], "Conv -> Softmax axis 1 (opset 13)", {"w": w(16, 16), "b": b(16)})
    chain("chain_conv_gap_reshape", [conv("c"), node("GlobalAveragePool", ["c"], ["g"]),
                                     node("Reshape", ["g", "s"], ["y"])],
          [2, 16, 3, 3], "Conv -> GlobalAveragePool -> Reshape [N,-1]", {
              "w": w(16, 16), "b": b(16), "s": np.array([0, -1], np.int64)})
    chain("chain_conv_sigmoid_mul", [conv("c"), node("Sigmoid", ["c"], ["g"]), node("Mul", ["c", "g"], ["y"])],
          [1, 16, 4, 4], "Conv -> x * Sigmoid(x) (swish)", {"w": w(16, 16), "b": b(16)})
    chain("chain_conv_add_two_convs", [conv("c1", wn="w1", bn="b1"), conv("c2", wn="w2", bn="b2"),
                                       node("Add", ["c1", "c2"], ["y"])],
          [1, 16, 4, 4], "Conv + Conv (two blocked operands)", {"w1": w(16, 16), "b1": b(16),
                                                                 "w2": w(16, 16), "b2": b(16)})
    chain("chain_conv_erf", [conv("c"), node("Erf", ["c"], ["y"])],
          [1, 16, 3, 3], "Conv -> Erf (Swift kernel on a blocked source)", {"w": w(16, 16), "b": b(16)})
    se = [node("GlobalAveragePool", ["x"], ["g"]),
          node("Conv", ["g", "w"], ["c"], name="conv_se"),
          node("Reshape", ["off", "off_shape"], ["off4"]),
          node("Add", ["c", "off4"], ["a"]),
          node("HardSigmoid", ["a"], ["h"], alpha=0.2, beta=0.5),
          node("Mul", ["x", "h"], ["y"])]
    se_inits = {"w": w(16, 16), "off": lambda r: randn(r, 16, scale=0.5),
                "off_shape": np.array([1, 16, 1, 1], np.int64)}
    chain("chain_se_gate", se, [1, 16, 3, 3], "PP-OCR (paddle2onnx) squeeze-excite: GAP, Conv, Add "
          "Reshape(constant, [1,C,1,1]), HardSigmoid, Mul (batch 1)", se_inits)
    chain("chain_se_gate_batch2", se, [2, 16, 3, 3], "the same squeeze-excite block on a batch of 2 "
          "([2,C,1,1] + constant [1,C,1,1])", se_inits)
    chain("chain_conv_add_channel_batch2", [conv("c"), node("Add", ["c", "off"], ["y"])],
          [2, 16, 3, 3], "Conv (batch 2) + constant [1,16,1,1]", {"w": w(16, 16), "b": b(16),
                                                                  "off": lambda r: randn(r, 1, 16, 1, 1)})
    chain("chain_matmul_add_layernorm", [node("MatMul", ["x", "mw"], ["m"]), node("Add", ["m", "mb"], ["a"]),
                                         node("LayerNormalization", ["a", "ls", "lb"], ["y"], axis=-1)],
          [2, 3, 8], "MatMul -> Add bias -> LayerNormalization (opset 17)", {
              "mw": lambda r: randn(r, 8, 16, scale=0.35), "mb": b(16), "ls": b(16), "lb": b(16)},
          opset=17)


def main():
    os.makedirs(HERE, exist_ok=True)
    conv_cases()
    matmul_cases()
    binary_cases()
    pooling_cases()
    layout_cases()
    resize_cases()
    activation_cases()
    normalization_cases()
    rnn_cases()
    chain_cases()
    with open(os.path.join(HERE, "cases.json"), "w") as f:  # one case per line
        f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(CASES[k], sort_keys=True)}"
                                   for k in sorted(CASES)) + "\n}\n")
    keep = {n + ext for n in CASES for ext in (".onnx", ".npz")} | {"cases.json"}
    for f in os.listdir(HERE):
        if f not in keep:
            os.remove(os.path.join(HERE, f))  # a case that was renamed or removed
    total = sum(os.path.getsize(os.path.join(HERE, x)) for x in os.listdir(HERE))
    print(f"{len(CASES)} cases, {total / 1024:.0f} KiB in {HERE}")


if __name__ == "__main__":
    main()
