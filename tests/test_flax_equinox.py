"""docs/coming-from/flax-equinox.md: its code blocks are the documented way to train xcorr layers in
flax nnx and equinox models, and each checks itself against nnx.Conv / eqx.nn.Conv2d with the same
weights (losses of every optax step to 1e-10, float64). This runs them as a reader would."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from matrix import require_module

PAGE = Path(__file__).resolve().parents[1] / "docs" / "coming-from" / "flax-equinox.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def test_the_page_has_one_block_per_library():
    assert len(BLOCKS) == 2 and "from flax import nnx" in BLOCKS[0] and "import equinox" in BLOCKS[1]


@pytest.mark.parametrize("index, library", [(0, "flax.nnx"), (1, "equinox")], ids=["nnx", "equinox"])
def test_page_block_trains_like_the_native_layer(index, library, monkeypatch):
    require_module(library)
    require_module("optax")
    # a module of its own, as a reader's script is (equinox's dataclasses look their module up)
    module = types.ModuleType(f"flax_equinox_page_{index}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(BLOCKS[index], f"{PAGE}:block{index}", "exec"), module.__dict__)
    namespace = module.__dict__
    losses, native = namespace["ours_losses"], namespace["native_losses"]
    assert len(losses) == len(native) == 20 and losses[-1] < losses[0]

