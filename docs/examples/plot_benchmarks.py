"""
Benchmark ratios
================

xcorr's time over the fastest native alternative of the same backend, measured in the same run:
below 1, xcorr is faster. The bars are drawn from the committed results files
``docs/_static/benchmarks.json`` and ``small.json`` (the small calls), written by
``python -m benchmarks --json PATH``; the :ref:`performance page <measured>` shows the same runs
as tables, with the machine and its load.
"""

import datetime
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

# The results file lies in docs/_static, beside this script's folder (sphinx-gallery runs the
# script from docs/examples without __file__; from the repository root it is docs/examples).
here = Path(globals().get("__file__", "plot_benchmarks.py")).resolve().parent
if not (here / "plot_benchmarks.py").is_file():
    here = Path("docs", "examples").resolve()


def load(name):
    """A results file's tables by key, and a line saying when, where and at which load it ran."""
    results = json.loads((here.parent / "_static" / name).read_text(encoding="utf-8"))
    started = datetime.datetime.fromisoformat(results["started"])
    machine = f"{results['machine']['cpu']}, {results['machine']['cores']} cores"
    average = results["load_average"]
    run = (
        f"run of {started:%Y-%m-%d %H:%M} UTC on {machine}; "
        f"load average {average['start'][0]:.1f} at the start, {average['end'][0]:.1f} at the end"
    )
    print(" ".join(results["command"]))
    print(run)
    return {t["key"]: t for t in results["tables"]}, run


tables, run = load("benchmarks.json")


def bars(ax, labels, ratios, title, notes=None, neutral=False):
    """Horizontal bars of ratios on a log axis, with the parity line at 1 (green: xcorr faster)."""
    y = np.arange(len(labels))
    colors = [
        "tab:blue" if neutral else "tab:green" if r <= 1 else "tab:red" for r in ratios
    ]
    ax.barh(y, ratios, color=colors)
    ax.set_xscale("log")
    ax.set_xlim(min(min(ratios) / 2, 0.5), max(max(ratios) * 6, 2))
    ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: no crowded minor labels
    ax.axvline(1, color="black", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    for yi, r, note in zip(y, ratios, notes or [""] * len(ratios)):
        ax.text(r, yi, f" {r:.2f}{note}", va="center", fontsize=7)


# %%
# Forward pass, single-channel float32 correlations in "valid" mode, against each backend's fastest
# native alternative (numpy: scipy.signal / scipy.ndimage; torch: ``F.conv2d``; jax: ``lax.conv``
# and ``jax.scipy.signal``, all jitted). Beside each bar, the method xcorr's ``"auto"`` picked.
backends = [b for b in ("numpy", "torch", "jax") if f"{b}.forward" in tables]
fig, axes = plt.subplots(
    len(backends), 1, figsize=(8, 3.4 * len(backends)), layout="constrained"
)
for ax, backend in zip(np.atleast_1d(axes), backends):
    rows = tables[f"{backend}.forward"]["rows"]
    labels = [r["case"] for r in rows]
    notes = [f"  {r['method']}" for r in rows]
    bars(
        ax,
        labels,
        [r["ratio"] for r in rows],
        f"{backend}: xcorr / fastest native",
        notes,
    )
fig.suptitle(f"forward, {run}", fontsize=9)
plt.show()

# %%
# Forward + backward (the output and both gradients in every timed call), against the framework's
# own autodiff of its native convolution; numpy has no native backward to compare with, so its
# bars (blue) are xcorr's forward + backward over its forward alone.
fig, axes = plt.subplots(
    len(backends), 1, figsize=(8, 1.9 * len(backends) + 0.6), layout="constrained"
)
for ax, backend in zip(np.atleast_1d(axes), backends):
    table = tables.get(f"{backend}.forward_backward")
    if table is None:
        ax.set_visible(False)
        continue
    rows = table["rows"]
    if all(r["ratio"] is None for r in rows):
        ratios = [r["fwd_bwd_over_fwd"] for r in rows]
        bars(
            ax,
            [r["case"] for r in rows],
            ratios,
            f"{backend}: fwd+bwd / fwd (no native backward)",
            neutral=True,
        )
    else:
        rows = [r for r in rows if r["ratio"] is not None]
        ratios = [r["ratio"] for r in rows]
        bars(
            ax,
            [r["case"] for r in rows],
            ratios,
            f"{backend}: xcorr fwd+bwd / native fwd+bwd",
        )
fig.suptitle(f"forward + backward, {run}", fontsize=9)
plt.show()

# %%
# Small calls (microseconds, where per-call overhead dominates) and a small CNN's training step.
tables, run = load("small.json")
small = [t for t in ("small_calls", "cnn_step") if t in tables]
if small:
    heights = [len(tables[key]["rows"]) + 2 for key in small]
    fig, axes = plt.subplots(
        len(small), 1, figsize=(8, 5.5), layout="constrained", height_ratios=heights
    )
    for ax, key in zip(np.atleast_1d(axes), small):
        rows = tables[key]["rows"]
        if key == "small_calls":
            labels = [f"{r['case']}, {r['backend']} vs {r['native']}" for r in rows]
            title = "small calls: xcorr / native"
        else:
            labels = [f"{r['backend']} vs {r['native']}" for r in rows]
            title = "small CNN's training step: xcorr / native"
        bars(ax, labels, [r["ratio"] for r in rows], title)
    fig.suptitle(run, fontsize=9)
    plt.show()
