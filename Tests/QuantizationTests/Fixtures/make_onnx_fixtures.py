#!/usr/bin/env python3
"""Writes the ONNX fixtures for ONNXImportTests into onnx/ next to this script (onnx 1.23.2).

Run from anywhere: python3 make_onnx_fixtures.py. The tests check the values written here, so
keep them in sync with ONNXImportTests.swift:

  weights.onnx         Add(x, w) -> y and Mul(y, c_tensor) -> z, nodes listed in reverse order.
                       Initializers: w f32 [2,3] = i*0.5-1 (raw_data); w_typed f32 [3] in
                       float_data; u8 u8 [4] raw = [0,1,128,255]; s8 int8 [3] in int32_data =
                       [-128,0,127]; s32 int32 [2] = [-70000, 70000]; i64 int64 [2] =
                       [-5e9, 5e9]; h FLOAT16 [4] raw = [1, -2, 0.5, 65504]; h_typed FLOAT16
                       [2] in int32_data = [1.5, -0.25]; d DOUBLE [3] raw = [0.1, -2.5, 1e10];
                       d_typed DOUBLE [1] in double_data = [3.25]; b BOOL [3] = [1,0,1];
                       i16 INT16 [2] = [-300, 300]; u16 UINT16 [2] = [0, 65535].
                       Graph input w (also an initializer) and x f32 [batch, ?, 3] (dim_param
                       "batch", then an unnamed dim).
                       Constant nodes: c_tensor (value f32 [3] = [1,2,3]), c_float (value_float
                       2.5), c_floats ([0.5, 1.5]), c_int (value_int 7), c_ints ([1, -2, 3]).
                       Output z f32 [batch, ?, 3]; value_info y.
                       metadata_props: character = "a\\nb\\nc", author = "fixture".
                       opset_import: "" 13, "com.example.unused" 2 (no node uses it).
  attributes.onnx      One node Custom (domain com.example) 'attrs' with attributes
                       i=5 f=0.25 s="héllo" ints=[1,2,3] floats=[0.5,-1] strings=["a","bc"]
                       t=int64 [2] [10, 20]; an unnamed Relu after it (named "Relu_1").
  external.onnx        Initializer ew f32 [2,2] = [1,2,3,4] in external.onnx.data at offset 16
                       (bytes 0..<16 are filler), length 16; Identity(ew) -> out.
  missing_external.onnx  Initializer mw f32 [2] stored in 'missing.bin', which does not exist.
  short_external.onnx  Initializer sw f32 [8] in external.onnx.data at offset 16 (file too short).
  cycle.onnx           Relu 'r1' (a -> b) and Relu 'r2' (b -> a): a cycle.
  dangling.onnx        Relu 'r1' reads 'nowhere', which nothing produces.
  subgraph.onnx        If 'branch' with then/else subgraphs.
  unsupported_type.onnx  Initializer 's' of type STRING.
  bad_raw_size.onnx    Initializer 'short' FLOAT [3] with only 8 bytes of raw_data.
  truncated.onnx       The first 60% of weights.onnx's bytes.
  random.bin           512 random bytes (seed 1234).
  empty.onnx           Zero bytes.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")


def save(model, name):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(model.SerializeToString())


def model(graph, opsets=(("", 13),), metadata=None):
    m = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
        producer_name="make_onnx_fixtures", producer_version="1.0")
    m.ir_version = 8
    for k, v in (metadata or {}).items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    return m


def weights():
    w = numpy_helper.from_array(
        (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3), "w")
    w_typed = helper.make_tensor("w_typed", TensorProto.FLOAT, [3], [0.25, 0.5, 0.75])
    u8 = numpy_helper.from_array(np.array([0, 1, 128, 255], np.uint8), "u8")
    s8 = helper.make_tensor("s8", TensorProto.INT8, [3], [-128, 0, 127])
    s32 = numpy_helper.from_array(np.array([-70000, 70000], np.int32), "s32")
    i64 = numpy_helper.from_array(np.array([-5_000_000_000, 5_000_000_000], np.int64), "i64")
    h = numpy_helper.from_array(np.array([1, -2, 0.5, 65504], np.float16), "h")
    h_typed = helper.make_tensor("h_typed", TensorProto.FLOAT16, [2],
                                 np.array([1.5, -0.25], np.float16))
    assert not h_typed.raw_data and len(h_typed.int32_data) == 2
    d = numpy_helper.from_array(np.array([0.1, -2.5, 1e10], np.float64), "d")
    d_typed = helper.make_tensor("d_typed", TensorProto.DOUBLE, [1], [3.25])
    b = numpy_helper.from_array(np.array([True, False, True]), "b")
    i16 = numpy_helper.from_array(np.array([-300, 300], np.int16), "i16")
    u16 = numpy_helper.from_array(np.array([0, 65535], np.uint16), "u16")

    consts = [
        helper.make_node("Constant", [], ["c_tensor"], name="const_tensor",
                         value=numpy_helper.from_array(np.array([1, 2, 3], np.float32))),
        helper.make_node("Constant", [], ["c_float"], name="const_float", value_float=2.5),
        helper.make_node("Constant", [], ["c_floats"], name="const_floats", value_floats=[0.5, 1.5]),
        helper.make_node("Constant", [], ["c_int"], name="const_int", value_int=7),
        helper.make_node("Constant", [], ["c_ints"], name="const_ints", value_ints=[1, -2, 3]),
    ]
    nodes = [
        helper.make_node("Mul", ["y", "c_tensor"], ["z"], name="mul"),
        helper.make_node("Add", ["x", "w"], ["y"], name="add"),
    ] + consts
    dims = ["batch", None, 3]
    graph = helper.make_graph(
        nodes, "weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, dims)],
        initializer=[w, w_typed, u8, s8, s32, i64, h, h_typed, d, d_typed, b, i16, u16],
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
    return model(graph, opsets=(("", 13), ("com.example.unused", 2)),
                 metadata={"character": "a\nb\nc", "author": "fixture"})


def attributes():
    node = helper.make_node(
        "Custom", ["x"], ["y"], name="attrs", domain="com.example",
        i=5, f=0.25, s="héllo", ints=[1, 2, 3], floats=[0.5, -1.0], strings=["a", "bc"],
        t=numpy_helper.from_array(np.array([10, 20], np.int64)))
    relu = helper.make_node("Relu", ["y"], ["z"])  # unnamed
    graph = helper.make_graph(
        [node, relu], "attributes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    return model(graph, opsets=(("", 13), ("com.example", 1)))


def external_tensor(name, dims, location, offset, length):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def external(name, tensor):
    graph = helper.make_graph(
        [helper.make_node("Identity", [tensor.name], ["out"], name="id")], "external", [],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(tensor.dims))],
        initializer=[tensor])
    save(model(graph), name)


def relu_graph(nodes, name, inputs=("x",), output="y"):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(i, TensorProto.FLOAT, [1]) for i in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1])])
    return model(graph)


def main():
    os.makedirs(HERE, exist_ok=True)
    w = weights()
    save(w, "weights.onnx")
    save(attributes(), "attributes.onnx")

    with open(os.path.join(HERE, "external.onnx.data"), "wb") as f:
        f.write(b"\xee" * 16 + np.array([1, 2, 3, 4], np.float32).tobytes())
    external("external.onnx", external_tensor("ew", [2, 2], "external.onnx.data", 16, 16))
    external("missing_external.onnx", external_tensor("mw", [2], "missing.bin", 0, 8))
    external("short_external.onnx", external_tensor("sw", [8], "external.onnx.data", 16, 32))

    save(relu_graph([helper.make_node("Relu", ["a"], ["b"], name="r1"),
                     helper.make_node("Relu", ["b"], ["a"], name="r2"),
                     helper.make_node("Add", ["x", "b"], ["y"], name="sum")], "cycle"),
         "cycle.onnx")
    save(relu_graph([helper.make_node("Relu", ["nowhere"], ["y"], name="r1")], "dangling"),
         "dangling.onnx")

    branch = lambda n: helper.make_graph(
        [helper.make_node("Identity", ["x"], [n + "_out"])], n, [],
        [helper.make_tensor_value_info(n + "_out", TensorProto.FLOAT, [1])])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], name="branch",
                          then_branch=branch("then"), else_branch=branch("else"))],
        "subgraph", [cond, helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    save(model(g), "subgraph.onnx")

    s = helper.make_tensor("s", TensorProto.STRING, [1], [b"text"])
    g = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["y"], name="id")], "strings", [],
        [helper.make_tensor_value_info("y", TensorProto.STRING, [1])], initializer=[s])
    save(model(g), "unsupported_type.onnx")

    short = helper.make_tensor("short", TensorProto.FLOAT, [2], b"\0" * 8, raw=True)
    short.dims[0] = 3
    g = helper.make_graph(
        [helper.make_node("Identity", ["short"], ["y"], name="id")], "bad_raw_size", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], initializer=[short])
    save(model(g), "bad_raw_size.onnx")

    data = w.SerializeToString()
    with open(os.path.join(HERE, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) * 6 // 10])
    with open(os.path.join(HERE, "random.bin"), "wb") as f:
        f.write(np.random.default_rng(1234).integers(0, 256, 512, dtype=np.uint8).tobytes())
    open(os.path.join(HERE, "empty.onnx"), "wb").close()

    # The well-formed fixtures are valid ONNX (external data checked with its folder);
    # weights.onnx once its nodes are in order, which the checker requires.
    for name in ("attributes.onnx", "external.onnx"):
        onnx.checker.check_model(os.path.join(HERE, name))
    ordered = onnx.ModelProto()
    ordered.CopyFrom(w)
    nodes = list(ordered.graph.node)
    del ordered.graph.node[:]
    ordered.graph.node.extend(nodes[2:] + [nodes[1], nodes[0]])
    onnx.checker.check_model(ordered, full_check=True)


if __name__ == "__main__":
    main()
