#!/usr/bin/env python3
"""ONNX operator conformance: runs ONNX's own node test cases on dnnl-quant (or onnxruntime).

The cases come from the installed onnx package (onnx.backend.test.case.node.collect_testcases:
every `expect(...)` of onnx/backend/test/case/node/*.py, the function-expanded `*_expanded`
variants included); nothing is downloaded. For each case the model and its inputs are written to
a work folder and run:

  ours         `dnnl-quant run CASE/model.onnx --input NAME=CASE/input_I.npy ... --output-dir OUT`
               (a subprocess per case, --timeout seconds each, --jobs at a time); outputs are
               OUT/<name>.npy (names sanitised as the CLI does).
  onnxruntime  the same model file and the same input arrays in this process
               (onnxruntime.InferenceSession, CPU, one thread per session, --jobs threads).

Each case is then one of:
  passed    exit 0 and every output matches (below);
  refused   a clean error: non-zero exit and a stderr line starting with "Error:" (the first such
            line is the detail); for onnxruntime, an exception (its first line);
  wrong     exit 0 but an output is missing, has another shape, an incompatible type, or values
            outside the tolerance;
  crashed   killed by a signal, timed out, or a non-zero exit without an "Error:" line;
  skipped   the case cannot be fed through .npy files on any engine (a sequence or optional
            input or output); counted apart, on both engines alike.

Comparison (as onnx's backend test runner, onnx/backend/test/runner, assert_similar_outputs,
with the case's rtol/atol, by default rtol=1e-3 atol=1e-7): shapes must be equal; then
  - expected float (f16, bf16, f32, f64, float8): the actual output may be any floating point type
    (the CLI's .npy files are f32, i8, u8, i32 or i64: an f16 or f64 result comes back as f32),
    compared in f64 with |actual - expected| <= atol + rtol * |expected|; NaN positions and
    infinities must agree. Note: an f32 result of a Cast to f16 passes even unrounded (half an f16
    step is below rtol); bf16's step is not;
  - expected integer of any width: the actual output must be integer, of any width (an engine may
    widen), and the values exactly equal (stricter than onnx's runner, which applies rtol to
    integers too);
  - expected bool: the actual output may be bool or integer (the CLI has no bool .npy type);
    values equal as 0/1;
  - expected strings: the actual output must hold equal strings;
  - random cases (Bernoulli, RandomNormal[Like], RandomUniform[Like], Multinomial, Dropout in
    training mode with a ratio above 0): only shape and type are compared, the expected values
    being one draw of numpy's generator.
onnxruntime returns float8 outputs as uint8 bit patterns: those are compared as the float8 type.

  onnx_cases.py                                   # every case on dnnl-quant, summary on stdout
  onnx_cases.py --engine onnxruntime --json /tmp/ort.json     # the same cases on onnxruntime
  onnx_cases.py --reference /tmp/ort.json         # + per refusal cause: how many pass on onnxruntime
  onnx_cases.py --filter 'test_(conv|relu)' --jobs 4 --json /tmp/r.json
  onnx_cases.py --check --baseline Tests/conformance/baseline.txt   # CI (ONNXConformanceTests)
  onnx_cases.py --write-baseline Tests/conformance/baseline.txt      # after implementing an op

The baseline lists the cases that pass, one a line (`#` comments), and `known-wrong NAME  # why`
entries: cases that are wrong or crash today. --check exits 1 when a listed case does not pass or
when any case is wrong or crashed, known-wrong entries aside; --write-baseline rewrites the list of
passing cases and keeps the known-wrong entries that are still wrong (--accept-wrong adds every
wrong or crashed case as known-wrong). Exit 2: the runner itself cannot run (no binary, arguments).
Work folder (one folder a case: model.onnx, input_I.npy): --work, default
$DNNL_QUANT_CACHE/conformance (~/.cache/swift-dnnl-quantization/conformance).
"""
import argparse
import collections
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "Models"))
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np  # noqa: E402

STATUSES = ("passed", "refused", "wrong", "crashed", "skipped")
RANDOM_OPS = {"Bernoulli", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}
# Dropout in training mode draws its mask (except with ratio 0).
RANDOM_CASES = re.compile(r"^test_training_dropout(?!_zero_ratio)")
CACHE = os.environ.get("DNNL_QUANT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "swift-dnnl-quantization")


def output_file_name(name):
    """The CLI's file name of an output (RunCommand.outputFileName)."""
    return "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "_" for c in name) + ".npy"


# ----------------------------------------------------------------------------------------------
# Cases


class Case:
    def __init__(self, name, op_type, expanded, model, inputs, outputs, rtol, atol):
        self.name, self.op_type, self.expanded = name, op_type, expanded
        self.model, self.inputs, self.outputs = model, inputs, outputs  # inputs/outputs: [(name, array)]
        self.rtol, self.atol = rtol, atol
        self.skip = None  # reason, when no engine can be fed

    @property
    def group(self):
        """The row of the per-operator table: the operator, `Op [expanded]` for function bodies."""
        return self.op_type + (" [expanded]" if self.expanded else "")


def _as_array(value):
    """A test value as a numpy array (TensorProto -> array, numpy scalar -> 0-d array); None for
    what .npy cannot carry (sequences, optionals, maps)."""
    from onnx import TensorProto, numpy_helper
    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (np.generic, bool, int, float)):
        return np.asarray(value)
    return None


def _describe(value):
    if value is None:
        return "an empty optional"
    if isinstance(value, (list, tuple)):
        return "a sequence"
    return type(value).__name__


def collect(pattern):
    """Every node test case of the installed onnx whose name matches `pattern` (re.search)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import onnx.backend.test.case.node as node_cases
        with np.errstate(all="ignore"):
            raw = node_cases.collect_testcases(None)
    ops = {}  # case name -> op type of its single node (for the *_expanded variants)
    cases = []
    for tc in raw:
        graph = tc.model.graph
        base = re.sub(r"_expanded(_ver\d+)?$", "", tc.name)
        expanded = base != tc.name
        if not expanded and len(graph.node) == 1:
            n = graph.node[0]
            ops[tc.name] = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        op = ops.get(base) or (graph.node[0].op_type if len(graph.node) == 1 else "?")
        if pattern and not re.search(pattern, tc.name):
            continue
        if not tc.data_sets:
            c = Case(tc.name, op, expanded, tc.model, [], [], tc.rtol, tc.atol)
            c.skip = "no data sets"
            cases.append(c)
            continue
        # Every generated node case has exactly one data set; more would be run one after another.
        ins, outs = tc.data_sets[0]
        in_names = [i.name for i in graph.input]
        out_names = [o.name for o in graph.output]
        inputs, outputs, skip = [], [], None
        for name, value in zip(in_names, ins):
            a = _as_array(value)
            if a is None:
                skip = skip or f"input '{name}' is {_describe(value)} (.npy cannot carry it)"
            inputs.append((name, a))
        for name, value in zip(out_names, outs):
            a = _as_array(value)
            if a is None:
                skip = skip or f"output '{name}' is {_describe(value)} (.npy cannot carry it)"
            outputs.append((name, a))
        c = Case(tc.name, op, expanded, tc.model, inputs, outputs, tc.rtol, tc.atol)
        c.skip = skip
        cases.append(c)
    return cases


def write_case(case, folder):
    """model.onnx and input_I.npy of a case in `folder`; returns the model path and [(name, file)].
    Written through temporary files renamed into place: concurrent runs share the folder."""
    os.makedirs(folder, exist_ok=True)
    tag = f".{os.getpid()}.{threading.get_ident()}.tmp"
    model = case.model.SerializeToString()
    path = os.path.join(folder, "model.onnx")
    try:
        with open(path, "rb") as f:
            same = f.read() == model
    except OSError:
        same = False
    if not same:
        with open(path + tag, "wb") as f:
            f.write(model)
        os.replace(path + tag, path)
    files = []
    for i, (name, a) in enumerate(case.inputs):
        f = os.path.join(folder, f"input_{i}.npy")
        if a.dtype == object:  # strings: fixed-width unicode, no pickle
            a = a.astype(str)
        with open(f + tag, "wb") as out:
            np.save(out, a, allow_pickle=False)
        os.replace(f + tag, f)
        files.append((name, f))
    return path, files


# ----------------------------------------------------------------------------------------------
# Comparison


def kind(dtype):
    """numpy's dtype.kind, with ml_dtypes' types (bfloat16, float8_*, int4, ...: kind 'V') judged
    by their name."""
    if dtype.kind != "V":
        return dtype.kind
    return "f" if "float" in dtype.name else ("u" if dtype.name.startswith("uint") else "i")


def is_random(case):
    """Whether the expected values of `case` are one draw of a random generator."""
    return case.op_type in RANDOM_OPS or bool(RANDOM_CASES.match(case.name))


def compare(case, actual, bit_patterns=False):
    """None when every output of `actual` ({name: array or None}) matches, else what differs.
    bit_patterns: an unsigned integer output of the width of an expected ml_dtypes type
    (bfloat16, float8, ...) holds its bit patterns (onnxruntime returns float8 as uint8)."""
    random_op = is_random(case)
    for name, expected in case.outputs:
        got = actual.get(name)
        if got is None:
            return f"output '{name}': missing"
        got = np.asarray(got)
        if bit_patterns and expected.dtype.kind == "V" and got.dtype.kind == "u" \
                and got.dtype.itemsize == expected.dtype.itemsize:
            got = got.view(expected.dtype)
        if got.shape != expected.shape:
            return f"output '{name}': shape {list(got.shape)}, expected {list(expected.shape)}"
        ek, gk = kind(expected.dtype), kind(got.dtype)
        ename = expected.dtype.name
        what = f"output '{name}': {got.dtype.name}, expected {ename}"
        if ek == "f":
            if gk != "f":
                return what + " (not floating point)"
        elif ek in "iu":
            if gk not in "iu":
                return what + " (not integer)"
        elif ek == "b":
            if gk not in "biu":
                return what + " (not bool/integer)"
        elif ek in "OUS":
            if gk not in "OUS":
                return what + " (not strings)"
        else:
            return what + " (unknown type)"
        if random_op or expected.size == 0:
            continue
        if ek in "OUS":
            if not np.array_equal(got.astype(str), expected.astype(str)):
                return f"output '{name}': strings differ"
            continue
        if ek == "f":
            e = expected.astype(np.float64)
            g = got.astype(np.float64)
            enan, gnan = np.isnan(e), np.isnan(g)
            if not np.array_equal(enan, gnan):
                idx = np.argwhere(enan != gnan)[0]
                return (f"output '{name}': NaN positions differ ({int((enan != gnan).sum())} of {e.size}; "
                        f"first at {list(map(int, idx))}: got {g[tuple(idx)]}, expected {e[tuple(idx)]})")
            ok = enan.copy()
            finite = np.isfinite(e)
            with np.errstate(all="ignore"):
                ok |= finite & (np.abs(g - e) <= case.atol + case.rtol * np.abs(e))
                ok |= np.isinf(e) & (g == e)
            if ok.all():
                continue
            bad = ~ok
            idx = np.argwhere(bad)[0]
            with np.errstate(all="ignore"):
                err = np.abs(g - e)[bad & finite]
            worst = f", max abs error {err.max():.4g}" if err.size else ""
            return (f"output '{name}': {int(bad.sum())} of {e.size} values differ{worst} "
                    f"(first at {list(map(int, idx))}: got {g[tuple(idx)]:.6g}, expected {e[tuple(idx)]:.6g}; "
                    f"rtol {case.rtol}, atol {case.atol})")
        # integer / bool: exact, compared as Python-sized integers where they fit int64/uint64
        e = expected.astype(np.int64) if ek == "b" else expected
        g = got.astype(np.int64) if gk == "b" else got
        try:
            same = np.array_equal(e.astype(object), g.astype(object)) if "u" in (e.dtype.kind, g.dtype.kind) \
                else np.array_equal(e.astype(np.int64), g.astype(np.int64))
        except (OverflowError, ValueError):
            same = False
        if not same:
            eo, go = e.astype(object), g.astype(object)
            bad = eo != go
            idx = np.argwhere(bad)[0]
            return (f"output '{name}': {int(bad.sum())} of {e.size} values differ "
                    f"(first at {list(map(int, idx))}: got {go[tuple(idx)]}, expected {eo[tuple(idx)]})")
    return None


# ----------------------------------------------------------------------------------------------
# Engines


def run_ours(case, folder, binary, timeout):
    model, files = write_case(case, folder)
    out = os.path.join(folder, f"out.{os.getpid()}.{threading.get_ident()}")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [binary, "run", model] + [x for n, f in files for x in ("--input", f"{n}={f}")] + ["--output-dir", out]
    # Its own process group: a timeout kills the CLI and anything it started.
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                         env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True)
    try:
        try:
            _, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            return "crashed", f"timeout after {timeout:g} s"
        return classify_ours(case, p.returncode, stderr, out, folder)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def classify_ours(case, returncode, stderr, out, folder):
    """(status, detail) of one finished `dnnl-quant run`; paths of the case folder are shortened."""
    def short(text):
        return text.replace(folder + os.sep, "").replace(folder, ".")[:500]
    err_lines = [line.strip() for line in stderr.splitlines()]
    last = next((ln for ln in reversed(err_lines) if ln), "")
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode).name
        except ValueError:
            sig = f"signal {-returncode}"
        return "crashed", short(f"killed by {sig}" + (f": {last}" if last else ""))
    if returncode != 0:
        # Errors exit 1 (ArgumentParser's usage errors 64) after an "Error: ..." line.
        first = next((ln for ln in err_lines if ln.startswith("Error:")), None)
        if first:
            return "refused", short(first)
        return "crashed", short(f"exit {returncode} without an Error: line" + (f": {last}" if last else ""))
    actual = {}
    for name, _ in case.outputs:
        f = os.path.join(out, output_file_name(name))
        if os.path.exists(f):
            try:
                actual[name] = np.load(f, allow_pickle=False)
            except Exception as e:  # noqa: BLE001  (an unreadable output is a wrong output)
                return "wrong", short(f"output '{name}': unreadable {f}: {e}")
    diff = compare(case, actual)
    return ("wrong", diff) if diff else ("passed", "")


# ONNX element types fed to onnxruntime as bit patterns: bfloat16 and the float8 types (one
# element a byte or two; the 4- and 2-bit types are packed, which ml_dtypes arrays are not).
ORT_BIT_PATTERN_TYPES = {16, 17, 18, 19, 20, 24}


def run_onnxruntime(case, folder, _binary, _timeout):
    import onnxruntime as ort
    model, _ = write_case(case, folder)
    try:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 4
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        types = {i.name: i.type.tensor_type.elem_type for i in case.model.graph.input}
        feeds = {}
        for n, a in case.inputs:
            # numpy has no bfloat16/float8: ml_dtypes arrays go in as their bit patterns.
            if a.dtype.kind == "V" and types.get(n) in ORT_BIT_PATTERN_TYPES:
                a = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
                    np.ascontiguousarray(a).view(np.uint8 if a.dtype.itemsize == 1 else np.uint16), types[n])
            feeds[n] = a
        results = sess.run([n for n, _ in case.outputs], feeds)
    except Exception as e:  # noqa: BLE001  (every exception of onnxruntime is a refusal)
        line = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        return "refused", f"{type(e).__name__}: {line}"[:500]
    diff = compare(case, {n: r for (n, _), r in zip(case.outputs, results)}, bit_patterns=True)
    return ("wrong", diff) if diff else ("passed", "")


# ----------------------------------------------------------------------------------------------
# Report


def cause(detail):
    """The cause of a refusal without its case-specific parts: `unsupported operator X`,
    `input dtype D`, or the message with names, shapes, numbers and paths blanked."""
    m = re.search(r"operator (\S+) \(opset \d+\) is not supported", detail)
    if m:
        return f"unsupported operator {m.group(1)}"
    m = re.search(r"unsupported dtype '([^']+)'", detail)
    if m:
        return f"input dtype {m.group(1)} (not readable by dnnl-quant)"
    d = re.sub(r"^Error: ", "", detail)
    d = re.sub(r"(/|\b)[\w.-]*(/[\w.-]+)*\.(onnx|npy)\b:?\s*", "", d)  # model/input paths
    d = re.sub(r"--input [^=\s]+=\S*", "--input NAME=FILE", d)
    d = re.sub(r"^node (\S+) '[^']*': ", r"\1: ", d)
    d = re.sub(r"\b(node \S+) '[^']*'", r"\1 '…'", d)
    d = re.sub(r"\b(input|inputs|output|value|weights|tensor) '[^']*'", r"\1 '…'", d)
    d = re.sub(r"\[[0-9, ?x-]*\]", "[…]", d)
    d = re.sub(r"\(opset \d+\)\s*", "", d)
    d = re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e[-+]?\d+)?(?![\w.])", "N", d)
    return d.strip()[:200]


def summary(results, engine, seconds, reference=None):
    """The text report: totals, the per-operator table, refusals grouped by cause, wrong and
    crashed cases in full. reference: {case: status} of another engine's run (--reference)."""
    lines = []
    totals = collections.Counter(r["status"] for r in results)
    run = len(results) - totals["skipped"]
    lines.append(f"ONNX node conformance, engine {engine} (onnx {onnx_version()}): "
                 f"{len(results)} cases in {seconds:.1f} s")
    lines.append("totals: " + ", ".join(f"{s} {totals[s]}" for s in STATUSES)
                 + (f" (passed {100.0 * totals['passed'] / run:.1f}% of the {run} run)" if run else ""))
    lines.append("")
    by_op = collections.defaultdict(collections.Counter)
    for r in results:
        by_op[r["group"]][r["status"]] += 1
    width = max([len(g) for g in by_op] + [8])
    lines.append(f"{'operator':<{width}}  {'passed':>6} {'refused':>7} {'wrong':>5} {'crashed':>7} {'skipped':>7}")
    for g in sorted(by_op, key=str.lower):
        c = by_op[g]
        lines.append(f"{g:<{width}}  {c['passed']:>6} {c['refused']:>7} {c['wrong']:>5} "
                     f"{c['crashed']:>7} {c['skipped']:>7}")
    lines.append("")
    refused = [r for r in results if r["status"] == "refused"]
    if refused:
        groups = collections.defaultdict(list)
        for r in refused:
            groups[cause(r["detail"])].append(r)
        ref_note = f"; of them passing on the reference {reference['engine']}" if reference else ""
        lines.append(f"refusals by cause (top 40 of {len(groups)} causes; cases{ref_note}; operators; an example):")
        for key, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:40]:
            ops = collections.Counter(r["group"] for r in rs)
            op_text = ", ".join(f"{o} {n}" for o, n in ops.most_common(8)) + (", ..." if len(ops) > 8 else "")
            ref = ""
            if reference:
                ref = f"{sum(1 for r in rs if reference['status'].get(r['name']) == 'passed'):5d} "
            lines.append(f"{len(rs):5d} {ref} {key}")
            lines.append(f"       ops: {op_text}")
            lines.append(f"       e.g. {rs[0]['name']}: {rs[0]['detail'][:300]}")
        lines.append("")
        op_refused = collections.Counter(r["group"] for r in refused)
        lines.append("refused cases per operator (top 40; `[expanded]`: the function-body variants):")
        for op, n in op_refused.most_common(40):
            lines.append(f"{n:5d}  {op}")
        lines.append("")
    if reference:
        matrix = collections.Counter((r["status"], reference["status"].get(r["name"], "absent")) for r in results)
        lines.append(f"status here x status on {reference['engine']}:")
        for (a, b), n in sorted(matrix.items()):
            lines.append(f"  {a:8} {b:8} {n:5d}")
        lines.append("")
    for status in ("wrong", "crashed"):
        rs = [r for r in results if r["status"] == status]
        lines.append(f"{status} ({len(rs)}):")
        for r in rs:
            lines.append(f"  {r['name']} [{r['group']}]: {r['detail']}")
        lines.append("")
    skipped = collections.Counter(re.sub(r"'[^']*'", "'…'", r["detail"]) for r in results if r["status"] == "skipped")
    if skipped:
        lines.append("skipped by reason:")
        for reason, n in skipped.most_common():
            lines.append(f"{n:5d}  {reason}")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Baseline


KNOWN_WRONG = "known-wrong"


def read_baseline(path):
    """(cases that must pass, {case: note} of known-wrong entries). A line is a case name, or
    `known-wrong NAME  # why`: a case that is wrong or crashes today, tolerated by --check until it
    is fixed; `#` starts a comment."""
    passing, known = [], {}
    with open(path) as f:
        for line in f:
            text, _, note = line.partition("#")
            words = text.split()
            if not words:
                continue
            if words[0] == KNOWN_WRONG and len(words) == 2:
                known[words[1]] = note.strip()
            elif len(words) == 1:
                passing.append(words[0])
            else:
                raise SystemExit(f"onnx_cases.py: {path}: cannot read the line {line.strip()!r}")
    return passing, known


def write_baseline(path, results, known):
    """The passing cases, sorted, then the known-wrong entries of `known` that are still wrong or
    crashed (with their notes)."""
    status = {r["name"]: r for r in results}
    passing = sorted(n for n, r in status.items() if r["status"] == "passed")
    still = sorted(n for n in known if n in status and status[n]["status"] in ("wrong", "crashed"))
    with open(path + ".tmp", "w") as f:
        f.write(f"# ONNX node test cases that pass on dnnl-quant (onnx {onnx_version()}): one a line, sorted.\n")
        f.write("# Tests/conformance/onnx_cases.py --check --baseline THIS fails when one of them does not pass\n")
        f.write("# or when any case is wrong or crashes, except the known-wrong entries at the end.\n")
        f.write("# Regenerate (keeps the known-wrong entries still wrong):\n")
        f.write("#   Tests/conformance/onnx_cases.py --write-baseline Tests/conformance/baseline.txt\n")
        f.write("".join(n + "\n" for n in passing))
        if still:
            f.write("\n# Known wrong: tolerated by --check until fixed (then they pass and drop out of this list).\n")
            f.write("".join(f"{KNOWN_WRONG} {n}" + (f"  # {known[n]}" if known[n] else "") + "\n" for n in still))
    os.replace(path + ".tmp", path)
    return len(passing), len(still)


def onnx_version():
    import onnx
    return onnx.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--engine", choices=["ours", "onnxruntime"], default="ours")
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "dnnl-quant"),
                    help="the dnnl-quant CLI (default: .build/release/dnnl-quant)")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at the same time (default 2)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds a case may run (ours; default 30)")
    ap.add_argument("--filter", default=None, help="only the cases whose name matches this regex (re.search)")
    ap.add_argument("--work", default=os.path.join(CACHE, "conformance"), help="work folder (default: %(default)s)")
    ap.add_argument("--json", default=None, help="write every case's name, op_type, status, detail here")
    ap.add_argument("--summary", default=None, help="also write the summary to this file")
    ap.add_argument("--reference", default=None,
                    help="a --json of another run (e.g. --engine onnxruntime): per refusal cause, how many "
                         "of its cases pass there, and a status matrix")
    ap.add_argument("--baseline", default=None,
                    help="cases that must pass (one a line, # comments, known-wrong entries)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when a case is wrong or crashed (known-wrong entries aside) or a baseline "
                         "case does not pass")
    ap.add_argument("--write-baseline", default=None,
                    help="write the sorted names of the passing cases here (known-wrong entries of --baseline, or "
                         "of this file, that are still wrong are kept)")
    ap.add_argument("--accept-wrong", action="store_true",
                    help="with --write-baseline: record every wrong or crashed case as known-wrong")
    args = ap.parse_args()
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    if args.check and not args.baseline:
        ap.error("--check needs --baseline")
    if args.write_baseline and args.filter:
        ap.error("--write-baseline needs every case: drop --filter")
    if args.filter:
        try:
            re.compile(args.filter)
        except re.error as e:
            ap.error(f"--filter: {e}")
    binary = os.path.abspath(args.binary)
    if args.engine == "ours" and not os.access(binary, os.X_OK):
        print(f"onnx_cases.py: {binary} is not built (swift build -c release --product dnnl-quant)", file=sys.stderr)
        return 2
    baseline, known = read_baseline(args.baseline) if args.baseline else ([], {})
    reference = None
    if args.reference:
        with open(args.reference) as f:
            ref = json.load(f)
        reference = {"engine": ref.get("engine", args.reference),
                     "status": {c["name"]: c["status"] for c in ref["cases"]}}

    start = time.monotonic()
    cases = collect(args.filter)
    collected = time.monotonic()
    # One folder per case (model.onnx, input_I.npy), shared by the engines and by concurrent runs;
    # ours writes its outputs to a folder of its own process and thread there, removed after.
    case_dir = os.path.join(os.path.abspath(args.work), "cases")
    os.makedirs(case_dir, exist_ok=True)
    runner = run_ours if args.engine == "ours" else run_onnxruntime

    def one(case):
        if case.skip:
            return "skipped", case.skip
        try:
            return runner(case, os.path.join(case_dir, case.name), binary, args.timeout)
        except Exception as e:  # noqa: BLE001  (a fault of the runner on one case; reported, not fatal)
            return "crashed", f"runner error: {type(e).__name__}: {e}"[:500]

    results = []
    progress = sys.stderr.isatty()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for case, (status, detail) in zip(cases, pool.map(one, cases)):
            results.append({"name": case.name, "op_type": case.op_type, "expanded": case.expanded,
                            "group": case.group, "status": status, "detail": detail})
            if progress and len(results) % 50 == 0:
                print(f"\r{len(results)}/{len(cases)}", end="", file=sys.stderr, flush=True)
    if progress:
        print("", file=sys.stderr)
    seconds = time.monotonic() - start

    text = summary(results, args.engine, seconds, reference)
    text += f"(collecting the cases took {collected - start:.1f} s; cases in {case_dir})\n"
    failures, notes = [], []
    by_name = {r["name"]: r for r in results}
    if args.baseline:
        missing = [n for n in baseline if n not in by_name and not args.filter]
        regressed = [by_name[n] for n in baseline if n in by_name and by_name[n]["status"] != "passed"]
        text += (f"baseline {args.baseline}: {len(baseline)} cases must pass, {len(regressed)} do not"
                 + (f", {len(missing)} are no longer generated by onnx" if missing else "")
                 + f"; {len(known)} known-wrong\n")
        failures += [f"baseline case {r['name']} is {r['status']}: {r['detail']}" for r in regressed]
        failures += [f"baseline case {n}: no such case in onnx {onnx_version()}" for n in missing]
        for n in known:
            if n in by_name and by_name[n]["status"] not in ("wrong", "crashed"):
                notes.append(f"known-wrong case {n} is {by_name[n]['status']} now: "
                             "update the baseline (--write-baseline)")
    if args.check:
        failures += [f"{r['status']}: {r['name']}: {r['detail']}" for r in results
                     if r["status"] in ("wrong", "crashed") and r["name"] not in known]
    print(text)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"engine": args.engine, "onnx": onnx_version(), "seconds": round(seconds, 1),
                       "cases": [{k: r[k] for k in ("name", "op_type", "expanded", "status", "detail")}
                                 for r in results]},
                      f, indent=1)
    if args.write_baseline:
        keep = dict(known)
        if not args.baseline and os.path.exists(args.write_baseline):
            keep = read_baseline(args.write_baseline)[1]
        if args.accept_wrong:
            for r in results:
                if r["status"] in ("wrong", "crashed"):
                    keep.setdefault(r["name"], r["detail"][:160])
        n_pass, n_known = write_baseline(args.write_baseline, results, keep)
        print(f"wrote {args.write_baseline}: {n_pass} passing cases, {n_known} known-wrong")
    for line in notes:
        print("note: " + line)
    if args.check:
        if failures:
            print(f"CHECK FAILED: {len(failures)} problem(s)")
            for line in failures:
                print("  " + line)
            return 1
        print(f"CHECK PASSED: {len(baseline)} baseline cases pass; "
              f"no wrong or crashed case beyond {len(known)} known-wrong")
    return 0


if __name__ == "__main__":
    sys.exit(main())
