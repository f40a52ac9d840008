#!/usr/bin/env python3
"""Seeded, reproducible evaluation / calibration data for the real models of Models/models.json.

Every sample is written already preprocessed (float32 NCHW `.npy`, or `.npz` for the speech
model's several inputs), so the Swift side (`dnnl-quant run`, XCTest suites) and
onnxruntime (Models/reference_outputs.py) read exactly the same tensors.

  Models/make_data.py                          # every set, default counts, seed 0
  Models/make_data.py lines words --count 300  # only these sets
  Models/make_data.py pages --count 3 --seed 1 --out /tmp/data
  Models/make_data.py all --calib 32           # generate, then copy the first 32 of each set
  Models/make_data.py calib --calib 32         # only copy from sets generated before
  Models/make_data.py lines --count 20 --png   # also write the rendered images (png/ subfolder)

Output (--out, default $DNNL_QUANT_CACHE/data or ~/.cache/swift-dnnl-quantization/data), one
flat folder per set; a folder holds the samples, its labels file and manifest.json (seed, count,
library versions, fonts, word-list sha256):

  lines/     line_NNNNN.npy  x[1,3,48,192]  PP-OCR direction classifier (ppocr_cls) input;
             labels.json {"line_NNNNN.npy": {"label": 0|1, "text", "font", "size"}}, label 1 =
             rendered line rotated by 180 degrees (every odd index: exactly half).
  words_v4/  word_NNNNN.npy  x[1,3,48,320]  PP-OCRv4 recogniser (ppocr_v4_rec) input
  words_v2/  word_NNNNN.npy  x[1,3,32,320]  PP-OCRv2 recogniser (ppocr_v2_rec) input, same words;
             labels.json in both {"word_NNNNN.npy": {"text", "font", "size"}}
  pages/     page_NNNNN.npy  x[1,3,640,640] PP-OCRv4 detector (ppocr_v4_det) input;
             boxes.json {"page_NNNNN.npy": [{"box": [x0,y0,x1,y1], "text"}, ...]}: ink bounding
             boxes in pixels, x1/y1 exclusive, never overlapping (8 px apart at least).
  speech/    NAME.npz  input[T,576] f32, h[1,1,128] zeros, c[1,1,128] zeros  (silero_vad);
             labels.json {"NAME.npz": {"label": "speech"|"noise", "source", "seconds"}}
  scans/     NAME.npy  x[1,3,H,W] real images of scikit-image 0.26.0 (page.png, text.png, ...)
             for the detector, H and W multiples of 32, max side 960; labels.json gives sizes.

Calibration (--calib K): the first K samples of each set (sorted file names, labels filtered)
are copied to --calib-dir (default: a folder `calib` next to --out), same layout. They are a
subset of the evaluation samples, not disjoint from them.

Preprocessing (PaddleOCR / RapidOCR conventions):
  cls, rec: RGB, resize keeping aspect ratio to height 48 (v2 rec: 32), width capped at 192 (cls)
            or 320 (rec), bilinear; x/255, (x-0.5)/0.5; zero (after normalisation) padding on the
            right up to width 192 / 320.
  det:      RGB; x/255, mean (0.485,0.456,0.406), std (0.229,0.224,0.225); pages are 640x640
            already; scans are resized (bilinear) so the longer side is <= 960, then each side
            rounded to a multiple of 32.
  speech:   48 kHz int16 ALSA clips -> float in [-1,1) -> windowed-sinc low-pass (Kaiser,
            cutoff 7.5 kHz, 255 taps, zero phase) -> every 3rd sample = 16 kHz; zero-padded to a
            multiple of 512; row t = the 64 samples before t*512 (zeros for t = 0) + 512 new.

Determinism: sample i of a set is drawn from numpy's default_rng([seed, set, i]) alone, so a
--count 20 run is exactly the first 20 samples of a --count 300 run. Same output needs the same
word list (wamerican), fonts (fonts-dejavu-core, fonts-liberation2) and Pillow/FreeType
(see manifest.json and Models/requirements.txt).

Needs: numpy, pillow (rendering), pip (scans: the scikit-image wheel, fetched as Models/fetch.py
does), Debian: fonts-dejavu-core fonts-liberation2 wamerican alsa-utils.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the repository when importing fetch.py
import fetch  # noqa: E402  (Models/fetch.py: CACHE and the wheel-member fetcher)

CACHE = fetch.CACHE
SETS = ["lines", "words", "pages", "speech", "scans"]
SET_IDS = {name: i for i, name in enumerate(SETS)}  # part of each sample's rng seed
DEFAULT_COUNTS = {"lines": 300, "words": 300, "pages": 20}

DICT_PATH = "/usr/share/dict/american-english"
ALSA_DIR = "/usr/share/sounds/alsa"
FONT_DIRS = {"dejavu": "/usr/share/fonts/truetype/dejavu",
             "liberation2": "/usr/share/fonts/truetype/liberation2"}
# Fixed list, so that a missing font is an error rather than a silently different data set.
FONTS = [
    "dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSans-Oblique.ttf",
    "dejavu/DejaVuSansCondensed.ttf", "dejavu/DejaVuSansCondensed-Bold.ttf",
    "dejavu/DejaVuSansMono.ttf", "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSerif-Bold.ttf", "dejavu/DejaVuSerif-Italic.ttf",
    "dejavu/DejaVuSerifCondensed.ttf",
    "liberation2/LiberationSans-Regular.ttf", "liberation2/LiberationSans-Bold.ttf",
    "liberation2/LiberationSans-Italic.ttf", "liberation2/LiberationSerif-Regular.ttf",
    "liberation2/LiberationSerif-Bold.ttf", "liberation2/LiberationSerif-Italic.ttf",
    "liberation2/LiberationMono-Regular.ttf", "liberation2/LiberationMono-Bold.ttf",
]

# scikit-image 0.26.0 wheel members used as real detector inputs (text first, then scenes that
# hold little or no text: they exercise the detector's background response).
SKIMAGE_PACKAGE = "scikit-image==0.26.0"
SKIMAGE_MEMBERS = {
    "page.png": "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3",
    "text.png": "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
    "logo.png": "f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "coins.png": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
}

CLS_H, CLS_W = 48, 192
REC_SHAPES = {"v4": (48, 320), "v2": (32, 320)}
PAGE = 640
DET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
DET_STD = np.array([0.229, 0.224, 0.225], np.float32)
DET_MAX_SIDE = 960
VAD_CONTEXT, VAD_CHUNK = 64, 512


# ----------------------------------------------------------------------------- helpers

def sample_rng(seed, set_name, index):
    """The generator of one sample: independent of how many samples are made."""
    return np.random.default_rng([seed, SET_IDS[set_name], index])


def sha256_file(path):
    """sha256 of a file (Models/fetch.py's)."""
    return fetch.sha256(path)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")


def fresh_dir(path):
    """An empty folder at path (old samples would mix with new ones otherwise)."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return path


def font_paths():
    paths = []
    for rel in FONTS:
        family, name = rel.split("/")
        p = os.path.join(FONT_DIRS[family], name)
        if not os.path.exists(p):
            sys.exit(f"make_data: font {p} is missing "
                     "(apt-get install -y fonts-dejavu-core fonts-liberation2)")
        paths.append(p)
    return paths


_WORDS = None


def words():
    """Dictionary words made of ASCII letters only, in file order."""
    global _WORDS
    if _WORDS is None:
        if not os.path.exists(DICT_PATH):
            sys.exit(f"make_data: {DICT_PATH} is missing (apt-get install -y wamerican)")
        with open(DICT_PATH, encoding="utf-8") as f:
            _WORDS = [w for w in (line.strip() for line in f)
                      if w.isascii() and w.isalpha()]
    return _WORDS


def manifest(set_name, args, extra=None):
    import PIL
    from PIL import features
    m = {"set": set_name, "seed": args.seed, "generator": "Models/make_data.py",
         "numpy": np.__version__, "pillow": PIL.__version__,
         "freetype": features.version("freetype2")}
    if set_name in ("lines", "words", "pages"):
        m["fonts"] = FONTS
        m["word_list"] = {"path": DICT_PATH, "sha256": sha256_file(DICT_PATH),
                          "ascii_letter_words": len(words())}
    m.update(extra or {})
    return m


# ----------------------------------------------------------------------------- rendering

def render_text(text, font, fg, bg, pad_x, pad_y):
    """Text on a plain background, cropped to its ink box plus padding. Returns RGB uint8."""
    mask = Image.new("L", (1, 1))
    left, top, right, bottom = ImageDraw.Draw(mask).textbbox((0, 0), text, font=font)
    w, h = right - left + 2 * pad_x, bottom - top + 2 * pad_y
    img = Image.new("RGB", (w, h), bg)
    ImageDraw.Draw(img).text((pad_x - left, pad_y - top), text, font=font, fill=fg)
    return img


def degrade(img, rng, max_sigma=6.0, blur_p=0.3):
    """Slight optical blur (sometimes) and Gaussian pixel noise."""
    if rng.random() < blur_p:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.9))))
    a = np.asarray(img, np.float32)
    a = a + rng.normal(0.0, rng.uniform(0.0, max_sigma), a.shape).astype(np.float32)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def colours(rng):
    """Dark ink on a light, slightly tinted background."""
    ink = int(rng.integers(0, 70))
    fg = tuple(int(np.clip(ink + rng.integers(-15, 16), 0, 255)) for _ in range(3))
    paper = int(rng.integers(190, 256))
    bg = tuple(int(np.clip(paper - rng.integers(0, 20), 0, 255)) for _ in range(3))
    return fg, bg


def text_crop(text, rng, fonts, size_range):
    font_path = fonts[int(rng.integers(len(fonts)))]
    size = int(rng.integers(*size_range))
    font = ImageFont.truetype(font_path, size)
    fg, bg = colours(rng)
    pad_x = int(rng.integers(2, max(3, size // 3)))
    pad_y = int(rng.integers(2, max(3, size // 5)))
    img = render_text(text, font, fg, bg, pad_x, pad_y)
    return img, os.path.basename(font_path), size


# ----------------------------------------------------------------------------- preprocessing

def resize_pad_norm(rgb, height, max_width):
    """PaddleOCR cls/rec: keep aspect to `height`, width <= max_width, (x/255-0.5)/0.5,
    zero-pad on the right. uint8 HxWx3 -> float32 [1,3,height,max_width]."""
    h, w = rgb.shape[:2]
    new_w = min(max_width, int(math.ceil(height * w / h)))
    img = Image.fromarray(rgb).resize((new_w, height), Image.BILINEAR)
    x = np.asarray(img, np.float32) / 255.0
    x = (x - 0.5) / 0.5
    out = np.zeros((1, 3, height, max_width), np.float32)
    out[0, :, :, :new_w] = x.transpose(2, 0, 1)
    return out


def det_norm(rgb):
    """PaddleOCR det normalisation of an HxWx3 uint8 image -> float32 [1,3,H,W]."""
    x = (np.asarray(rgb, np.float32) / 255.0 - DET_MEAN) / DET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def det_resize(img):
    """Longer side <= DET_MAX_SIDE, then each side rounded to a multiple of 32 (at least 32)."""
    w, h = img.size
    ratio = min(1.0, DET_MAX_SIDE / max(h, w))
    nh = max(32, int(round(h * ratio / 32)) * 32)
    nw = max(32, int(round(w * ratio / 32)) * 32)
    return img.resize((nw, nh), Image.BILINEAR) if (nw, nh) != (w, h) else img


# ----------------------------------------------------------------------------- sets

def gen_lines(args, out):
    """Text lines of 1-3 dictionary words for the direction classifier; odd indices are
    rotated by 180 degrees (label 1)."""
    d = fresh_dir(os.path.join(out, "lines"))
    fonts, vocab = font_paths(), words()
    labels = {}
    for i in range(args.count["lines"]):
        rng = sample_rng(args.seed, "lines", i)
        text = " ".join(vocab[int(rng.integers(len(vocab)))] for _ in range(int(rng.integers(1, 4))))
        img, font, size = text_crop(text, rng, fonts, (18, 45))
        rotated = i % 2 == 1
        if rotated:
            img = img.rotate(180)
        rgb = degrade(img, rng)
        name = f"line_{i:05d}"
        np.save(os.path.join(d, name + ".npy"), resize_pad_norm(rgb, CLS_H, CLS_W))
        if args.png:
            save_png(d, name, rgb)
        labels[name + ".npy"] = {"label": int(rotated), "text": text, "font": font, "size": size}
    write_json(os.path.join(d, "labels.json"), labels)
    write_json(os.path.join(d, "manifest.json"), manifest("lines", args, {
        "count": len(labels), "input": "x[1,3,48,192]", "model": "ppocr_cls",
        "label": "0 = upright (0 deg), 1 = rotated by 180 deg"}))
    return ["lines"]


def random_word(rng, vocab):
    """A dictionary word as is / lower / Capitalised / UPPER, or a number."""
    kind = rng.random()
    if kind < 0.15:
        return str(int(rng.integers(0, 10 ** int(rng.integers(2, 8)))))
    w = vocab[int(rng.integers(len(vocab)))]
    if kind < 0.55:
        return w
    if kind < 0.75:
        return w.lower()
    if kind < 0.88:
        return w.capitalize()
    return w.upper()


def gen_words(args, out):
    """Single words for the recognisers; the same rendered crop feeds v4 (h 48) and v2 (h 32)."""
    dirs = {v: fresh_dir(os.path.join(out, f"words_{v}")) for v in REC_SHAPES}
    fonts, vocab = font_paths(), words()
    labels = {}
    for i in range(args.count["words"]):
        rng = sample_rng(args.seed, "words", i)
        text = random_word(rng, vocab)
        img, font, size = text_crop(text, rng, fonts, (18, 45))
        rgb = degrade(img, rng)
        name = f"word_{i:05d}"
        for v, (h, w) in REC_SHAPES.items():
            np.save(os.path.join(dirs[v], name + ".npy"), resize_pad_norm(rgb, h, w))
        if args.png:
            save_png(dirs["v4"], name, rgb)
        labels[name + ".npy"] = {"text": text, "font": font, "size": size}
    for v, (h, w) in REC_SHAPES.items():
        write_json(os.path.join(dirs[v], "labels.json"), labels)
        write_json(os.path.join(dirs[v], "manifest.json"), manifest("words", args, {
            "count": len(labels), "input": f"x[1,3,{h},{w}]", "model": f"ppocr_{v}_rec"}))
    return ["words_v4", "words_v2"]


def overlaps(box, boxes, gap):
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + gap and b[0] < x1 + gap and y0 < b[3] + gap and b[1] < y1 + gap
               for b in boxes)


def gen_pages(args, out):
    """640x640 white pages with 4-12 words at random non-overlapping places (ink boxes)."""
    d = fresh_dir(os.path.join(out, "pages"))
    fonts, vocab = font_paths(), words()
    all_boxes = {}
    for i in range(args.count["pages"]):
        rng = sample_rng(args.seed, "pages", i)
        page = Image.new("RGB", (PAGE, PAGE), (255, 255, 255))
        draw = ImageDraw.Draw(page)
        boxes, items = [], []
        wanted = int(rng.integers(4, 13))
        attempts = 0
        while len(items) < wanted and attempts < 200:
            attempts += 1
            text = random_word(rng, vocab)
            font = ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], int(rng.integers(18, 49)))
            ink = int(rng.integers(0, 80))
            # The ink box of the word, measured on its own mask (tight to the glyphs).
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            mask = Image.new("L", (right - left + 4, bottom - top + 4), 0)
            ImageDraw.Draw(mask).text((2 - left, 2 - top), text, font=font, fill=255)
            bb = mask.getbbox()
            if bb is None:
                continue
            bw, bh = bb[2] - bb[0], bb[3] - bb[1]
            if bw > PAGE - 32 or bh > PAGE - 32:
                continue
            x0 = int(rng.integers(16, PAGE - 16 - bw))
            y0 = int(rng.integers(16, PAGE - 16 - bh))
            box = [x0, y0, x0 + bw, y0 + bh]
            if overlaps(box, boxes, 8):
                continue
            draw.text((x0 - bb[0] + 2 - left, y0 - bb[1] + 2 - top), text, font=font,
                      fill=(ink, ink, ink))
            boxes.append(box)
            items.append({"box": box, "text": text})
        rgb = degrade(page, rng, max_sigma=3.0, blur_p=0.2)
        name = f"page_{i:05d}"
        np.save(os.path.join(d, name + ".npy"), det_norm(rgb))
        if args.png:
            save_png(d, name, rgb)
        all_boxes[name + ".npy"] = items
    write_json(os.path.join(d, "boxes.json"), all_boxes)
    write_json(os.path.join(d, "manifest.json"), manifest("pages", args, {
        "count": len(all_boxes), "input": "x[1,3,640,640]", "model": "ppocr_v4_det",
        "boxes": "ink bounding boxes [x0,y0,x1,y1] in pixels, x1/y1 exclusive"}))
    return ["pages"]


def lowpass_kernel(fs=48000.0, cutoff=7500.0, taps=255, beta=8.0):
    """Windowed-sinc (Kaiser) low-pass FIR with unit DC gain."""
    n = np.arange(taps) - (taps - 1) / 2
    fc = cutoff / fs
    h = 2 * fc * np.sinc(2 * fc * n) * np.kaiser(taps, beta)
    return h / h.sum()


def resample_48k_to_16k(x):
    """48 kHz -> 16 kHz: zero-phase windowed-sinc low-pass, then every 3rd sample."""
    y = np.convolve(x.astype(np.float64), lowpass_kernel(), mode="same")
    return y[::3].astype(np.float32)


def vad_rows(x):
    """16 kHz waveform -> silero sequence input [T,576]: row t = 64 context + 512 new samples."""
    t = max(1, -(-len(x) // VAD_CHUNK))
    padded = np.zeros(VAD_CONTEXT + t * VAD_CHUNK, np.float32)
    padded[VAD_CONTEXT:VAD_CONTEXT + len(x)] = x
    rows = np.lib.stride_tricks.sliding_window_view(padded, VAD_CONTEXT + VAD_CHUNK)[::VAD_CHUNK]
    return np.ascontiguousarray(rows[:t], dtype=np.float32)


def read_wav_48k(path):
    with wave.open(path) as w:
        if w.getframerate() != 48000 or w.getsampwidth() != 2:
            sys.exit(f"make_data: {path}: expected 48 kHz 16-bit, got {w.getparams()}")
        a = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
        return a.reshape(-1, w.getnchannels()).mean(axis=1)


def noise_clip(rng, kind, seconds=1.5, rms=0.05, fs=16000):
    """Seeded white or pink (1/f power) noise at 16 kHz."""
    n = int(seconds * fs)
    white = rng.standard_normal(n)
    if kind == "pink":
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / fs)
        f[0] = f[1]
        white = np.fft.irfft(spec / np.sqrt(f), n)
    return (white / np.sqrt(np.mean(white ** 2)) * rms).astype(np.float32)


def save_vad(d, name, wav16):
    np.savez(os.path.join(d, name + ".npz"), input=vad_rows(wav16),
             h=np.zeros((1, 1, 128), np.float32), c=np.zeros((1, 1, 128), np.float32))


def gen_speech(args, out):
    """The ALSA test clips ('Front left' ... spoken; Noise.wav is noise) plus seeded noise."""
    d = fresh_dir(os.path.join(out, "speech"))
    if not os.path.isdir(ALSA_DIR):
        sys.exit(f"make_data: {ALSA_DIR} is missing (apt-get install -y alsa-utils)")
    labels, sources = {}, {}
    for f in sorted(os.listdir(ALSA_DIR)):
        if not f.endswith(".wav"):
            continue
        path = os.path.join(ALSA_DIR, f)
        wav16 = resample_48k_to_16k(read_wav_48k(path))
        name = os.path.splitext(f)[0]
        save_vad(d, name, wav16)
        labels[name + ".npz"] = {"label": "noise" if name == "Noise" else "speech",
                                 "source": path, "seconds": round(len(wav16) / 16000, 4)}
        sources[f] = sha256_file(path)
    for j, kind in enumerate(["pink", "white"]):
        rng = sample_rng(args.seed, "speech", j)
        wav16 = noise_clip(rng, kind)
        name = f"noise_{kind}"
        save_vad(d, name, wav16)
        labels[name + ".npz"] = {"label": "noise", "source": f"seeded {kind} noise, rms 0.05",
                                 "seconds": round(len(wav16) / 16000, 4)}
    write_json(os.path.join(d, "labels.json"), labels)
    write_json(os.path.join(d, "manifest.json"), manifest("speech", args, {
        "count": len(labels), "model": "silero_vad",
        "input": "npz: input[T,576] (64 context + 512 new samples, 16 kHz), h, c [1,1,128]",
        "resampler": "Kaiser windowed-sinc, cutoff 7.5 kHz, 255 taps, beta 8, decimate by 3",
        "alsa_sha256": sources}))
    return ["speech"]


def gen_scans(args, out):
    """Real images of the scikit-image wheel, resized and normalised for the detector."""
    d = fresh_dir(os.path.join(out, "scans"))
    labels = {}
    for member, digest in SKIMAGE_MEMBERS.items():
        entry = {"name": f"skimage_{member}", "package": SKIMAGE_PACKAGE,
                 "member": f"skimage/data/{member}", "path": f"data/skimage/{member}",
                 "sha256": digest}
        path = fetch.fetch(entry)
        with Image.open(path) as im:
            img = im.convert("RGB")
        orig = img.size
        img = det_resize(img)
        name = os.path.splitext(member)[0]
        np.save(os.path.join(d, name + ".npy"), det_norm(np.asarray(img)))
        labels[name + ".npy"] = {"member": entry["member"], "orig_wh": list(orig),
                                 "wh": list(img.size), "has_text": member in ("page.png", "text.png", "logo.png")}
    write_json(os.path.join(d, "labels.json"), labels)
    write_json(os.path.join(d, "manifest.json"), manifest("scans", args, {
        "count": len(labels), "model": "ppocr_v4_det", "package": SKIMAGE_PACKAGE,
        "members": SKIMAGE_MEMBERS, "input": "x[1,3,H,W], H, W multiples of 32, max side 960"}))
    return ["scans"]


def save_png(d, name, rgb):
    os.makedirs(os.path.join(d, "png"), exist_ok=True)
    Image.fromarray(rgb).save(os.path.join(d, "png", name + ".png"))


# ----------------------------------------------------------------------------- calibration

LABEL_FILES = ("labels.json", "boxes.json")


def copy_calib(out, calib_dir, folders, k):
    """Copy the first k samples (sorted names) of each folder, with filtered label files."""
    for folder in folders:
        src = os.path.join(out, folder)
        if not os.path.isdir(src):
            sys.exit(f"make_data calib: {src} does not exist (generate the set first)")
        dst = fresh_dir(os.path.join(calib_dir, folder))
        samples = sorted(f for f in os.listdir(src) if f.endswith((".npy", ".npz")))[:k]
        for f in samples:
            shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
        for lf in LABEL_FILES:
            p = os.path.join(src, lf)
            if os.path.exists(p):
                with open(p) as fh:
                    labels = json.load(fh)
                write_json(os.path.join(dst, lf), {s: labels[s] for s in samples if s in labels})
        mp = os.path.join(src, "manifest.json")
        if os.path.exists(mp):
            with open(mp) as fh:
                m = json.load(fh)
            m.update({"calibration_of": src, "count": len(samples)})
            write_json(os.path.join(dst, "manifest.json"), m)
        print(f"calib {folder}: {len(samples)} samples -> {dst}")


GENERATORS = {"lines": gen_lines, "words": gen_words, "pages": gen_pages,
              "speech": gen_speech, "scans": gen_scans}
FOLDERS = {"lines": ["lines"], "words": ["words_v4", "words_v2"], "pages": ["pages"],
           "speech": ["speech"], "scans": ["scans"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:3]))
    p.add_argument("sets", nargs="*", metavar="SET",
                   help="lines words pages speech scans | all | calib (default: all)")
    p.add_argument("--count", type=int,
                   help="samples per generated set (lines, words, pages; default 300/300/20); "
                        "speech and scans have fixed contents")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(CACHE, "data"),
                   help="output folder (default: %(default)s)")
    p.add_argument("--calib", type=int, metavar="K",
                   help="also copy the first K samples of each set to --calib-dir")
    p.add_argument("--calib-dir", help="default: a folder 'calib' next to --out")
    p.add_argument("--png", action="store_true", help="also save the rendered images under png/")
    args = p.parse_args(argv)

    names = args.sets or ["all"]
    unknown = [n for n in names if n not in SETS + ["all", "calib"]]
    if unknown:
        p.error(f"unknown set(s) {unknown}; known: {SETS + ['all', 'calib']}")
    only_calib = names == ["calib"]
    selected = SETS if "all" in names or only_calib else [n for n in SETS if n in names]
    if ("calib" in names) and args.calib is None:
        p.error("calib needs --calib K")
    args.count = {s: (args.count if args.count is not None else DEFAULT_COUNTS.get(s, 0))
                  for s in SETS}
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    folders = []
    if only_calib:
        folders = [f for s in selected for f in FOLDERS[s] if os.path.isdir(os.path.join(out, f))]
    else:
        for s in selected:
            made = GENERATORS[s](args, out)
            for f in made:
                n = len([x for x in os.listdir(os.path.join(out, f)) if x.endswith((".npy", ".npz"))])
                print(f"{f}: {n} samples -> {os.path.join(out, f)}")
            folders += made
    if args.calib is not None:
        calib_dir = os.path.abspath(args.calib_dir or os.path.join(os.path.dirname(out), "calib"))
        copy_calib(out, calib_dir, folders, args.calib)


if __name__ == "__main__":
    main()
