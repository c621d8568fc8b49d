"""The seed notebook's printed outputs, on every backend."""

import numpy as np

import xcorr

from matrix import assert_result


def test_seed_corr2d_example(backend):
    # In [3]: corr2d of the 3x3 input with the 2x2 kernel.
    x = backend.asarray([[0, 1, 2], [3, 4, 5], [6, 7, 8]], "int64")
    k = backend.asarray([[0, 1], [2, 3]], "int64")
    y = xcorr.corr2d(x, k)
    assert_result(backend, y, np.array([[19.0, 25.0], [37.0, 43.0]]), "int64", like=x)


def edge_image():
    # In [5]: X = torch.ones(6, 8); X[:, 2:6] = 0
    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    return X


def test_seed_edge_detection(backend):
    # In [9]: corr2d(X, K) with K = [[1, -1]] (an integer kernel on a float image).
    x = backend.asarray(edge_image())
    k = backend.asarray([[1, -1]], "int64")
    y = xcorr.corr2d(x, k)
    row = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]
    assert_result(backend, y, np.array([row] * 6), "float32", like=x)
