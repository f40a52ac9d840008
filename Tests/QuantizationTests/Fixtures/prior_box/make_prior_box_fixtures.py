#!/usr/bin/env python3
"""Writes prior_box.json: paddle.vision.ops.prior_box outputs (PaddlePaddle 3.3.1, CPU) for
several attribute sets, the independent reference of PriorBoxTests.

Run with the project's venv after `bash Models/python_env.sh --paddle`:
  $PYTHON Tests/QuantizationTests/Fixtures/prior_box/make_prior_box_fixtures.py
"""
import json
import os

import numpy as np
import paddle

CASES = [
    dict(feature=[1, 8, 3, 4], image=[1, 3, 30, 40], min_sizes=[10.0], max_sizes=[20.0], aspect_ratios=[2.0],
         variance=[0.1, 0.1, 0.2, 0.2], flip=True, clip=True, steps=[0.0, 0.0], offset=0.5, min_max_aspect_ratios_order=False),
    dict(feature=[1, 4, 2, 2], image=[1, 3, 300, 300], min_sizes=[60.0, 90.0], max_sizes=[90.0, 150.0], aspect_ratios=[2.0, 3.0],
         variance=[0.1, 0.1, 0.2, 0.2], flip=True, clip=False, steps=[150.0, 150.0], offset=0.5, min_max_aspect_ratios_order=True),
    dict(feature=[1, 2, 5, 3], image=[1, 3, 50, 30], min_sizes=[8.0], max_sizes=[], aspect_ratios=[1.0, 0.5],
         variance=[0.2, 0.2, 0.1, 0.1], flip=False, clip=False, steps=[10.0, 8.0], offset=0.25, min_max_aspect_ratios_order=False),
    dict(feature=[1, 3, 4, 4], image=[1, 3, 32, 32], min_sizes=[4.0, 12.0], max_sizes=[], aspect_ratios=[2.0],
         variance=[0.1, 0.1, 0.2, 0.2], flip=True, clip=True, steps=[0.0, 0.0], offset=0.5, min_max_aspect_ratios_order=True),
]

out = []
for c in CASES:
    x = paddle.zeros(c["feature"], dtype="float32")
    img = paddle.zeros(c["image"], dtype="float32")
    boxes, var = paddle.vision.ops.prior_box(
        x, img, min_sizes=c["min_sizes"], max_sizes=c["max_sizes"] or None, aspect_ratios=c["aspect_ratios"],
        variance=c["variance"], flip=c["flip"], clip=c["clip"], steps=c["steps"], offset=c["offset"],
        min_max_aspect_ratios_order=c["min_max_aspect_ratios_order"])
    entry = dict(c)
    entry["boxes_shape"] = list(boxes.shape)
    entry["boxes"] = [float(v) for v in np.asarray(boxes).ravel()]
    entry["variances"] = [float(v) for v in np.asarray(var).ravel()]
    out.append(entry)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prior_box.json")
with open(path, "w") as f:
    json.dump({"paddle": paddle.__version__, "cases": out}, f, indent=1)
print("wrote", path, [e["boxes_shape"] for e in out])
