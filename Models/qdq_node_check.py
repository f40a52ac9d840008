#!/usr/bin/env python3
"""Per-node fixtures of a QDQ ONNX model: every quantized unit as a small standalone model, its
captured int8 inputs and its FP64 QDQ reference output (QDQInteropTests runs the units on our
engine and counts the elements more than one quantization step away).

  Models/qdq_node_check.py MODEL.onnx SAMPLE.npy|.npz --out DIR [--crop HxW] [--max-nodes 48] [--force]

--crop HxW cuts the sample's last two dimensions to their top-left H x W (a 640x640 detector
page gives ~320 MB of fixtures; 320x320 a quarter of it).

1. Capture: onnxruntime runs MODEL on SAMPLE with every graph optimisation off
   (ORT_DISABLE_ALL), with every QuantizeLinear output (and every constant or shape-derived
   tensor a unit needs) added as a graph output.
2. Units: for each QuantizeLinear of an activation (its input is computed at run time), the float
   nodes between it and the DequantizeLinears that feed them, found by walking back from the
   QuantizeLinear's input until DequantizeLinear outputs, constants, shape-derived tensors or
   graph inputs: e.g. DQ(x), DQ(w), DQ(b) -> Conv -> Q; DQ(a), DQ(b) -> Add -> Q;
   DQ(x) -> Conv -> BatchNormalization -> Relu -> Q (NNCF); DQ(x) -> decomposed LayerNorm -> Q.
   Units without a float node (requantizing DQ -> Q) or with more than --max-nodes float nodes are
   listed as skipped.
3. Each unit is written as unit_NNN.onnx (opset and domains of MODEL): graph inputs are the
   int8/uint8 tensors of its activation DequantizeLinears (their captured values in
   unit_NNN_in_K.npy); weights, biases, scales, zero points and constant or shape-derived inputs
   are initializers (a QuantizeLinear of a constant float weight, as NNCF writes them, stays in
   the unit with its float constant); the output is the QuantizeLinear's (int8/uint8).
4. Reference (unit_NNN_ref.npy): dequantize every DequantizeLinear in float64, run the float
   nodes in float64 (onnx.reference.ReferenceEvaluator; Conv and ConvTranspose by numpy here,
   BatchNormalization in inference mode, Cast to a float type kept in float64), quantize with round-half-to-even and saturation.
   onnxruntime's own captured output of the unit is compared with it too (manifest:
   ort_within_1, ort_max_step): a check of the reference; and onnxruntime runs the unit model
   alone (unit_ort_exact: the share of elements equal to the full model's captured output,
   1.0 when the unit was cut out right).

DIR/manifest.json: {"model", "model_sha256", "sample", "crop", "key", "units": [{"index", "name" (the
QuantizeLinear), "node" (the unit's main node: its Conv/ConvTranspose/Gemm/MatMul, else its
first float node), "op_type", "ops" (every float node's op type), "nodes", "model" (file),
"inputs": [{"name", "file", "dtype", "shape"}], "output": {"name", "file", "dtype", "shape",
"scale", "zero_point"}, "macs", "ort_within_1", "ort_max_step", "unit_ort_exact"}], "skipped": [{"name",
"reason"}], "seconds"}. Redone only when MODEL, SAMPLE, --max-nodes or this script changed
(key), or with --force. Prints a summary; the last line is JSON (counts).
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np  # noqa: E402

from fetch import sha256  # noqa: E402  (Models/fetch.py)

# onnx (and its reference evaluator) are imported by load_onnx(), after the up-to-date check:
# importing them takes longer than the check.
onnx = helper = numpy_helper = ReferenceEvaluator = None
REFERENCE_OPS = []

MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def load_sample(path, model):
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    if path.endswith(".npz"):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    return {names[0]: np.load(path)}


# --------------------------------------------------------------------------- FP64 kernels

def _pads(pads, nd):
    pads = list(pads) if pads else [0] * (2 * nd)
    return pads[:nd], pads[nd:]


def conv_f64(x, w, b=None, strides=None, pads=None, dilations=None, group=1):
    """ONNX Conv (NOTSET auto_pad) in float64: one batched matmul per kernel position."""
    nd = x.ndim - 2
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    begin, end = _pads(pads, nd)
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    k = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(begin[i], end[i]) for i in range(nd)])
    out = [(xp.shape[2 + i] - ((k[i] - 1) * dilations[i] + 1)) // strides[i] + 1 for i in range(nd)]
    xg = xp.reshape(n, group, cg, *xp.shape[2:])
    wg = w.reshape(group, m // group, cg, *k)
    y = np.zeros((n, group, m // group, int(np.prod(out))), np.float64)
    for pos in np.ndindex(*k):
        sl = tuple(slice(pos[i] * dilations[i], pos[i] * dilations[i] + (out[i] - 1) * strides[i] + 1, strides[i])
                   for i in range(nd))
        xs = xg[(slice(None), slice(None), slice(None)) + sl].reshape(n, group, cg, -1)
        y += np.matmul(wg[(slice(None), slice(None), slice(None)) + pos], xs)
    y = y.reshape(n, m, *out)
    if b is not None:
        y += b.reshape((1, m) + (1,) * nd)
    return y


def conv_transpose_f64(x, w, b=None, strides=None, pads=None, dilations=None, group=1, output_padding=None):
    """ONNX ConvTranspose (explicit pads, no output_shape) in float64."""
    nd = x.ndim - 2
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    begin, end = _pads(pads, nd)
    opad = list(output_padding or [0] * nd)
    n, c = x.shape[:2]
    cg, mg = w.shape[:2]
    k = w.shape[2:]
    ins = x.shape[2:]
    full = [(ins[i] - 1) * strides[i] + (k[i] - 1) * dilations[i] + 1 + opad[i] for i in range(nd)]
    y = np.zeros((n, group, mg) + tuple(full), np.float64)
    xg = x.reshape(n, group, cg, -1)
    wg = w.reshape(group, cg, mg, *k)
    for pos in np.ndindex(*k):
        contrib = np.matmul(np.swapaxes(wg[(slice(None), slice(None), slice(None)) + pos], 1, 2), xg)
        sl = tuple(slice(pos[i] * dilations[i], pos[i] * dilations[i] + (ins[i] - 1) * strides[i] + 1, strides[i])
                   for i in range(nd))
        y[(slice(None), slice(None), slice(None)) + sl] += contrib.reshape(n, group, mg, *ins)
    y = y.reshape(n, group * mg, *full)
    crop = tuple(slice(begin[i], full[i] - end[i]) for i in range(nd))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.reshape((1, group * mg) + (1,) * nd)
    return np.ascontiguousarray(y)


def load_onnx():
    """Imports onnx and defines the FP64 reference's own kernels (REFERENCE_OPS)."""
    global onnx, helper, numpy_helper, ReferenceEvaluator
    import onnx as onnx_module
    from onnx import helper as helper_module, numpy_helper as numpy_helper_module
    from onnx.reference import ReferenceEvaluator as evaluator
    from onnx.reference.op_run import OpRun
    onnx, helper, numpy_helper, ReferenceEvaluator = onnx_module, helper_module, numpy_helper_module, evaluator

    class Conv64(OpRun):
        op_domain = ""

        def _run(self, X, W, B=None, auto_pad=None, dilations=None, group=None, kernel_shape=None, pads=None,
                 strides=None):
            if auto_pad not in (None, "NOTSET", b"NOTSET", "VALID", b"VALID"):
                raise NotImplementedError(f"Conv auto_pad {auto_pad}")
            if auto_pad in ("VALID", b"VALID"):
                pads = None
            return (conv_f64(X.astype(np.float64), W.astype(np.float64), None if B is None else B.astype(np.float64),
                             strides, pads, dilations, group or 1),)

    Conv64.__name__ = "Conv"

    class ConvTranspose64(OpRun):
        op_domain = ""

        def _run(self, X, W, B=None, auto_pad=None, dilations=None, group=None, kernel_shape=None, output_padding=None,
                 output_shape=None, pads=None, strides=None):
            if output_shape or auto_pad not in (None, "NOTSET", b"NOTSET"):
                raise NotImplementedError("ConvTranspose with output_shape or auto_pad")
            return (conv_transpose_f64(X.astype(np.float64), W.astype(np.float64),
                                       None if B is None else B.astype(np.float64), strides, pads, dilations,
                                       group or 1, output_padding),)

    ConvTranspose64.__name__ = "ConvTranspose"

    class BatchNormalization64(OpRun):
        """Inference BatchNormalization (onnx 1.23's reference runs opset 9-13 BatchNormalization in
        training mode whenever the node has a momentum attribute, as paddle2onnx's have)."""
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, training_mode=None, spatial=None):
            if training_mode:
                raise NotImplementedError("BatchNormalization training_mode=1")
            shape = (1, -1) + (1,) * (x.ndim - 2)
            eps = 1e-5 if epsilon is None else float(epsilon)
            f = lambda v: np.asarray(v, np.float64).reshape(shape)  # noqa: E731
            return ((x - f(mean)) / np.sqrt(f(var) + eps) * f(scale) + f(bias),)

    BatchNormalization64.__name__ = "BatchNormalization"

    class Cast64(OpRun):
        """Cast that keeps float64 when the target is a float type (FP64 reference)."""
        op_domain = ""

        def _run(self, x, to=None, saturate=None, round_mode=None):
            if to in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16) and \
                    np.issubdtype(np.asarray(x).dtype, np.floating):
                return (np.asarray(x, np.float64),)
            return (np.asarray(x).astype(helper.tensor_dtype_to_np_dtype(to)),)

    Cast64.__name__ = "Cast"

    REFERENCE_OPS[:] = [Conv64, ConvTranspose64, BatchNormalization64, Cast64]


def _axis_shape(scale, axis, rank):
    scale = np.asarray(scale, np.float64)
    if scale.ndim == 0 or scale.size == 1:
        return scale.reshape(())
    shape = [1] * rank
    shape[axis % rank] = scale.size
    return scale.reshape(shape)


def dequantize(q, scale, zp, axis):
    s = _axis_shape(scale, axis, q.ndim)
    z = _axis_shape(np.zeros_like(scale, np.float64) if zp is None else np.asarray(zp, np.float64), axis, q.ndim)
    return (q.astype(np.float64) - z) * s


def quantize(x, scale, zp, axis, dtype):
    s = _axis_shape(scale, axis, x.ndim)
    z = _axis_shape(np.zeros(np.asarray(scale).shape) if zp is None else np.asarray(zp, np.float64), axis, x.ndim)
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / s) + z, info.min, info.max).astype(dtype)


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def node_macs(node, shapes):
    """MACs of a Conv/ConvTranspose/Gemm/MatMul from the shapes of its tensors."""
    try:
        if node.op_type == "Conv":
            w, y = shapes[node.input[1]], shapes[node.output[0]]
            return int(np.prod(y) * np.prod(w[1:]))
        if node.op_type == "ConvTranspose":
            x, w = shapes[node.input[0]], shapes[node.input[1]]
            return int(np.prod(x) * np.prod(w[1:]))
        if node.op_type == "MatMul":
            a, y = shapes[node.input[0]], shapes[node.output[0]]
            return int(np.prod(y) * a[-1])
        if node.op_type == "Gemm":
            a, y = shapes[node.input[0]], shapes[node.output[0]]
            return int(np.prod(y) * (a[0] if attr(node, "transA", 0) else a[-1]))
    except (KeyError, IndexError):
        return 0
    return 0


# --------------------------------------------------------------------------- units

class Graph:
    def __init__(self, model):
        self.model = model
        g = model.graph
        self.inits = {i.name: i for i in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output if o}
        self.inputs = {i.name for i in g.input if i.name not in self.inits}
        # Tensors known before the run (constants) or fixed by the sample's shapes (Shape).
        self.static = set(self.inits)
        for n in g.node:  # topological order
            ins = [i for i in n.input if i]
            # A DequantizeLinear of a constant stays in its unit (the weight of a Conv, ...).
            if n.op_type in ("Constant", "Shape", "Size") or (ins and all(i in self.static for i in ins)
                                                            and n.op_type not in ("QuantizeLinear",
                                                                                  "DequantizeLinear")):
                self.static.update(o for o in n.output if o)
            if n.op_type == "QuantizeLinear" and ins and ins[0] in self.static:
                self.static.update(o for o in n.output if o)  # a constant weight quantized at run time
        self.order = {id(n): k for k, n in enumerate(g.node)}


def find_unit(graph, q, max_nodes):
    """(float nodes, activation DQ nodes, constant-input DQ nodes (and the QuantizeLinears of
    constants that feed them), static tensors, float graph inputs) of the unit ending in
    QuantizeLinear q, or a reason string."""
    nodes, act_dq, const_dq, static, float_inputs = {}, {}, {}, set(), set()
    stack, seen = [q.input[0]], set()
    while stack:
        t = stack.pop()
        if t in seen or not t:
            continue
        seen.add(t)
        if t in graph.static:
            static.add(t)
            continue
        if t in graph.inputs:
            float_inputs.add(t)
            continue
        p = graph.producer.get(t)
        if p is None:
            return f"tensor {t} has no producer"
        if p.op_type == "DequantizeLinear":
            (const_dq if p.input[0] in graph.static else act_dq)[id(p)] = p
            for i in p.input[1:]:
                if i:
                    static.add(i)
            if p.input[0] in graph.static:
                wq = graph.producer.get(p.input[0])
                if wq is not None and wq.op_type == "QuantizeLinear":
                    # A float constant quantized in the graph (NNCF's weights): the unit keeps the
                    # QuantizeLinear, as the file has it.
                    const_dq[id(wq)] = wq
                    static.update(i for i in wq.input if i)
                else:
                    static.add(p.input[0])
            continue
        if p.op_type == "QuantizeLinear":
            return f"a float node reads QuantizeLinear {p.name}'s int8 output directly"
        nodes[id(p)] = p
        if len(nodes) > max_nodes:
            return f"more than {max_nodes} float nodes between the DequantizeLinears and this QuantizeLinear"
        stack.extend(i for i in p.input if i)
    if not nodes:
        return "no float node (requantization or graph-input quantization)"
    for dq in act_dq.values():
        if graph.producer.get(dq.input[0]) is None and dq.input[0] not in graph.inputs:
            return f"DequantizeLinear {dq.name} reads {dq.input[0]}, which nothing produces"
    order = lambda n: graph.order[id(n)]  # noqa: E731
    return (sorted(nodes.values(), key=order), sorted(act_dq.values(), key=order),
            sorted(const_dq.values(), key=order), static, float_inputs)


def capture(model_path, model, feeds, names):
    import onnxruntime as ort
    m = onnx.load(model_path)
    have = {o.name for o in m.graph.output}
    for n in sorted(names):
        if n not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=n))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    so.intra_op_num_threads = min(2, os.cpu_count() or 1)
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = [o.name for o in sess.get_outputs()]
    values = sess.run(outs, feeds)
    return dict(zip(outs, values))


def run_unit_ort(m, feeds):
    """The unit model run by onnxruntime (no optimisation): equal to the full model's captured
    output when the unit was cut out right."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    except Exception:  # noqa: BLE001  (recorded as null)
        return None


def const_value(graph, values, name):
    if name in graph.inits:
        return numpy_helper.to_array(graph.inits[name])
    return values[name]


def build(graph, values, q, unit, opsets):
    """(unit ModelProto, graph input names, reference output, float sub-results' shapes)."""
    nodes, act_dq, const_dq, static, float_inputs = unit
    initializers, graph_inputs = [], []
    for t in sorted(static):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(const_value(graph, values, t)), t))
    q_static = [i for i in q.input[1:] if i and i not in static]
    for t in q_static:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(const_value(graph, values, t)), t))
    in_names = []
    for dq in act_dq:
        x = dq.input[0]
        if x in in_names:
            continue
        in_names.append(x)
        v = values[x]
        graph_inputs.append(helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
    for x in sorted(float_inputs):
        in_names.append(x)
        v = values[x]
        graph_inputs.append(helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
    y = values[q.output[0]]
    out = helper.make_tensor_value_info(q.output[0], helper.np_dtype_to_tensor_dtype(y.dtype), list(y.shape))
    g = helper.make_graph(list(const_dq) + list(act_dq) + list(nodes) + [q], f"unit_{q.name}", graph_inputs, [out],
                          initializers)
    m = helper.make_model(g, opset_imports=opsets, producer_name="qdq_node_check")
    m.ir_version = graph.model.ir_version

    # FP64 reference: dequantize, float nodes in float64, quantize.
    feeds = {}
    for dq in const_dq + act_dq:
        if dq.op_type != "DequantizeLinear":
            continue  # a constant's QuantizeLinear: its DequantizeLinear reads the captured result
        x = values[dq.input[0]] if dq.input[0] in values else const_value(graph, values, dq.input[0])
        scale = const_value(graph, values, dq.input[1])
        zp = const_value(graph, values, dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
        feeds[dq.output[0]] = dequantize(np.asarray(x), scale, zp, attr(dq, "axis", 1))
    for t in static:
        if t not in feeds:
            v = np.asarray(const_value(graph, values, t))
            feeds[t] = v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v
    for t in float_inputs:
        feeds[t] = values[t].astype(np.float64)
    produced = [o for n in nodes for o in n.output if o]
    used = {i for n in nodes for i in n.input if i}
    f_inputs = [helper.make_tensor_value_info(t, onnx.TensorProto.UNDEFINED, None) for t in sorted(used)
                if t not in produced]
    f_outputs = [helper.make_tensor_value_info(t, onnx.TensorProto.UNDEFINED, None) for t in produced]
    fg = helper.make_graph(list(nodes), "float64", f_inputs, f_outputs)
    fm = helper.make_model(fg, opset_imports=opsets)
    ref = ReferenceEvaluator(fm, new_ops=list(REFERENCE_OPS))
    results = ref.run(None, {i.name: feeds[i.name] for i in f_inputs})
    got = dict(zip(produced, results))
    shapes = {k: np.shape(v) for k, v in {**feeds, **got}.items()}
    x = np.asarray(got[q.input[0]], np.float64)
    scale = const_value(graph, values, q.input[1])
    zp = const_value(graph, values, q.input[2]) if len(q.input) > 2 and q.input[2] else None
    reference = quantize(x, scale, zp, attr(q, "axis", 1), y.dtype)
    return m, in_names, reference, shapes, scale, zp


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("model")
    p.add_argument("sample")
    p.add_argument("--out", required=True)
    p.add_argument("--crop", metavar="HxW", help="top-left crop of the sample's last two dimensions")
    p.add_argument("--max-nodes", type=int, default=48)
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    with open(os.path.abspath(__file__), "rb") as f:
        me = hashlib.sha256(f.read()).hexdigest()
    crop = None
    if a.crop:
        try:
            crop = [int(v) for v in a.crop.lower().split("x")]
            assert len(crop) == 2 and min(crop) > 0
        except (ValueError, AssertionError):
            p.error("--crop takes HxW, e.g. 320x320")
    key = hashlib.sha256(f"{me}:{sha256(a.model)}:{sha256(a.sample)}:{a.max_nodes}:{crop}".encode()).hexdigest()
    manifest_path = os.path.join(a.out, "manifest.json")
    if not a.force and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        if old.get("key") == key:
            print(f"qdq_node_check: up to date ({manifest_path}: {len(old['units'])} units)")
            print(json.dumps({"units": len(old["units"]), "skipped": len(old["skipped"]), "up_to_date": True}))
            return

    load_onnx()
    model = onnx.load(a.model)
    graph = Graph(model)
    feeds = load_sample(a.sample, model)
    if crop:
        feeds = {k: np.ascontiguousarray(v[..., :crop[0], :crop[1]]) for k, v in feeds.items()}
    qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in graph.static]
    units, skipped = [], []
    for q in qs:
        u = find_unit(graph, q, a.max_nodes)
        if isinstance(u, str):
            skipped.append({"name": q.name, "reason": u})
        else:
            units.append((q, u))
    needed = set()
    for q, (nodes, act_dq, const_dq, static, float_inputs) in units:
        needed.add(q.output[0])
        needed.update(dq.input[0] for dq in act_dq)
        needed.update(n.output[0] for n in const_dq if n.op_type == "QuantizeLinear")
        needed.update(float_inputs)
        needed.update(t for t in static | {i for i in q.input[1:] if i} if t not in graph.inits)
    values = capture(a.model, model, feeds, needed)

    tmp = a.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    opsets = list(model.opset_import)
    entries = []
    for k, (q, u) in enumerate(units):
        nodes = u[0]
        try:
            m, in_names, reference, shapes, scale, zp = build(graph, values, q, u, opsets)
        except Exception as e:  # noqa: BLE001  (an op the FP64 reference cannot run: listed)
            skipped.append({"name": q.name, "reason": f"reference failed: {type(e).__name__}: {e}"[:500]})
            continue
        stem = f"unit_{k:03d}"
        onnx.save(m, os.path.join(tmp, stem + ".onnx"))
        inputs = []
        for j, n in enumerate(in_names):
            f = f"{stem}_in_{j}.npy"
            np.save(os.path.join(tmp, f), np.ascontiguousarray(values[n]))  # C order, never fortran_order
            inputs.append({"name": n, "file": f, "dtype": str(values[n].dtype), "shape": list(values[n].shape)})
        np.save(os.path.join(tmp, stem + "_ref.npy"), np.ascontiguousarray(reference))
        ort_out = values[q.output[0]].astype(np.int32)
        step = np.abs(ort_out - reference.astype(np.int32))
        main_node = next((n for n in nodes if n.op_type in MAC_OPS), nodes[0])
        unit_ort = run_unit_ort(m, {n: values[n] for n in in_names})
        scale_a = np.asarray(scale).reshape(-1)
        entries.append({
            "index": k, "name": q.name, "node": main_node.name or f"{main_node.op_type}:{main_node.output[0]}", "op_type": main_node.op_type,
            "ops": [n.op_type for n in nodes], "nodes": [n.name for n in nodes], "model": stem + ".onnx",
            "inputs": inputs,
            "output": {"name": q.output[0], "file": stem + "_ref.npy", "dtype": str(reference.dtype),
                       "shape": list(reference.shape), "scale": float(scale_a[0]),
                       "zero_point": int(np.asarray(zp).reshape(-1)[0]) if zp is not None else 0},
            "macs": int(sum(node_macs(n, shapes) for n in nodes)),
            "ort_within_1": float(np.mean(step <= 1)) if step.size else 1.0,
            "ort_max_step": int(step.max()) if step.size else 0,
            "unit_ort_exact": float(np.mean(unit_ort == values[q.output[0]])) if unit_ort is not None else None,
        })
    seconds = time.perf_counter() - t0
    manifest = {"model": os.path.abspath(a.model), "model_sha256": sha256(a.model),
                "sample": os.path.abspath(a.sample), "crop": crop, "key": key, "units": entries, "skipped": skipped,
                "seconds": round(seconds, 2)}
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    old = a.out.rstrip("/") + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(a.out):
        os.replace(a.out, old)
    os.replace(tmp, a.out)
    shutil.rmtree(old, ignore_errors=True)

    ops = {}
    for e in entries:
        ops[e["op_type"]] = ops.get(e["op_type"], 0) + 1
    worst = sorted(entries, key=lambda e: e["ort_within_1"])[:3]
    cut = [e for e in entries if e["unit_ort_exact"] != 1.0]
    for e in cut[:10]:
        print(f"  WARNING: unit {e['model']} ({e['node']}) run alone by onnxruntime: {e['unit_ort_exact']} "
              "of the elements equal the full model's (the unit is not cut out right)")
    print(f"qdq_node_check: {len(entries)} units of {os.path.basename(a.model)} in {a.out} ({seconds:.1f} s); "
          f"by main op: {', '.join(f'{k} {v}' for k, v in sorted(ops.items()))}; {len(skipped)} skipped")
    for s in skipped[:10]:
        print(f"  skipped {s['name']}: {s['reason']}")
    for e in worst:
        print(f"  onnxruntime vs the FP64 reference, lowest: {e['node']} ({e['op_type']}) "
              f"{e['ort_within_1']:.5f} within 1 step, max {e['ort_max_step']}")
    print(json.dumps({"units": len(entries), "skipped": len(skipped), "seconds": round(seconds, 2),
                      "ort_min_within_1": min((e["ort_within_1"] for e in entries), default=1.0)}))


if __name__ == "__main__":
    main()
