"""``import xcorr`` and a numpy call load no framework (checked in a fresh interpreter)."""

import subprocess
import sys
import textwrap

# numba too: small numpy calls stay below xcorr.backends._numba.MIN_OUTPUTS.
FRAMEWORKS = ("torch", "jax", "jaxlib", "dask", "cupy", "scipy", "array_api_strict", "numba", "llvmlite")


def test_import_and_numpy_call_load_no_framework():
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import xcorr
        y = xcorr.corr2d(np.ones((6, 8)), np.array([[1, -1]]), mode="same", boundary="symm")
        assert y.shape == (6, 8)
        loaded = [name for name in {FRAMEWORKS!r} if name in sys.modules]
        print(",".join(loaded))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import xcorr loaded: {out.stdout.strip()}"
