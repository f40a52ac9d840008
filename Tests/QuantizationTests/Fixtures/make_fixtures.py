#!/usr/bin/env python3
"""Writes the .npy/.npz fixtures for NPYTests and NPZTests with numpy.

Run from anywhere: python3 make_fixtures.py  (writes next to this script).
The tests recompute every value from the same formulas, so keep them in sync:

  f32_2x3x4.npy      float32 (2, 3, 4)  i * 0.25 - 3
  u8_5.npy           uint8   (5,)       (i * 37 + 11) % 256
  s8_3x3.npy         int8    (3, 3)     (i * 29) % 256 - 128
  s32_2x2.npy        int32   (2, 2)     i * 1_000_003 - 1_500_000
  i64_4.npy          int64   (4,)       i * 3_000_000_000 - 4_000_000_000
  f32_scalar.npy     float32 ()         2.5
  u8_16d.npy         uint8   (2, 1, ..., 1, 3) (16 dims)  (i * 37 + 11) % 256; its header needs
                     numpy's spare "growth" spaces to be 192 rather than 128 bytes long
  f32_3x2_v2.npy     float32 (3, 2)     i * 0.25 - 3, format version 2.0
  plain.npz          np.savez            a = f32 (2, 3), b = s8 (4,), c = i64 (2,) (formulas above)
  compressed.npz     np.savez_compressed same members
Malformed inputs:
  f8.npy             float64 (2,)       read as f32 [1, 2]
  f4_big_endian.npy  '>f4' (2,)         big-endian
  fortran.npy        float32 (2, 3) in Fortran order
  v3.npy             float32 (2,) written as format 3.0
  b1.npy             bool (2,)           read as u8 [1, 0]
  not_npy_member.npz zip with a.npy and readme.txt
  bad_member.npz     np.savez with good = u8 (5,) and bad = uint64 (2,)
"""
import os
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "Models"))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import use_venv  # noqa: E402  (Models/use_venv.py)

if __name__ == "__main__":
    use_venv.ensure()  # re-executes with $PYTHON, the project's venv (Models/python_env.sh)

import numpy as np
from numpy.lib import format as npformat

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def i(n):
    return np.arange(n, dtype=np.int64)


def f32(shape):
    return (i(int(np.prod(shape))) * 0.25 - 3).astype(np.float32).reshape(shape)


def u8(shape):
    return ((i(int(np.prod(shape))) * 37 + 11) % 256).astype(np.uint8).reshape(shape)


def s8(shape):
    return ((i(int(np.prod(shape))) * 29) % 256 - 128).astype(np.int8).reshape(shape)


def s32(shape):
    return (i(int(np.prod(shape))) * 1_000_003 - 1_500_000).astype(np.int32).reshape(shape)


def i64(shape):
    return (i(int(np.prod(shape))) * 3_000_000_000 - 4_000_000_000).astype(np.int64).reshape(shape)


def write_version(name, array, version):
    with open(path(name), "wb") as f:
        npformat.write_array(f, array, version=version)


np.save(path("f32_2x3x4.npy"), f32((2, 3, 4)))
np.save(path("u8_5.npy"), u8((5,)))
np.save(path("s8_3x3.npy"), s8((3, 3)))
np.save(path("s32_2x2.npy"), s32((2, 2)))
np.save(path("i64_4.npy"), i64((4,)))
np.save(path("f32_scalar.npy"), np.array(2.5, dtype=np.float32))
np.save(path("u8_16d.npy"), u8((2,) + (1,) * 14 + (3,)))
write_version("f32_3x2_v2.npy", f32((3, 2)), (2, 0))

members = {"a": f32((2, 3)), "b": s8((4,)), "c": i64((2,))}
np.savez(path("plain.npz"), **members)
np.savez_compressed(path("compressed.npz"), **members)

np.save(path("f8.npy"), np.array([1.0, 2.0]))
np.save(path("f4_big_endian.npy"), np.array([1.0, 2.0], dtype=">f4"))
np.save(path("fortran.npy"), np.asfortranarray(f32((2, 3))))
write_version("v3.npy", f32((2,)), (3, 0))
np.save(path("b1.npy"), np.array([True, False]))
with zipfile.ZipFile(path("not_npy_member.npz"), "w") as z:
    z.writestr("a.npy", open(path("u8_5.npy"), "rb").read())
    z.writestr("readme.txt", "not an array\n")
np.savez(path("bad_member.npz"), good=u8((5,)), bad=np.array([1, 2], dtype=np.uint64))
