"""``python -m xcorr demo``: the seed notebook's numbers."""

from __future__ import annotations

import sys

import numpy as np

import xcorr


def demo() -> None:
    x = np.arange(9).reshape(3, 3)
    k = np.array([[0, 1], [2, 3]])
    print("corr2d(X, K) =")
    print(xcorr.corr2d(x, k))
    image = np.ones((6, 8), dtype=np.float32)
    image[:, 2:6] = 0
    print("edge image X =")
    print(image)
    print("corr2d(X, [[1, -1]]) =")
    print(xcorr.corr2d(image, np.array([[1, -1]])))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["demo"]:
        print("usage: python -m xcorr demo", file=sys.stderr)
        return 2
    demo()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
