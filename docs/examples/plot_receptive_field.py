"""
A receptive field, predicted and measured
=========================================

The *receptive field* of an output element is the set of input elements it depends on. For a stack of
three 3x3 layers — plain, then stride 2, then dilation 3 in "same" mode — :func:`xcorr.receptive_field`
gives its size, jump and position in closed form, and :func:`xcorr.empirical_receptive_field`
measures it from the gradient of one output with respect to the input (on numpy, through the
layers' exact VJPs; on torch and jax through their autodiff). The heat
map is that gradient: the last layer's taps lie 6 input pixels apart (dilation 3 after stride 2),
further than the 5 pixels the first two layers cover, so the field has holes; the closed form's
mask predicts them exactly.
"""

import matplotlib.pyplot as plt
import numpy as np

import xcorr

stack = [
    xcorr.Conv2D(3, dtype="float64"),
    xcorr.Conv2D(3, stride=2, dtype="float64"),
    xcorr.Conv2D(3, dilation=3, mode="same", dtype="float64"),
]
for layer in stack:  # positive weights: no cancellation hides a dependence
    layer.weight = np.ones_like(layer.weight)

rf = xcorr.receptive_field(stack, input_shape=(24, 24))
print(rf)

# %%
index = (3, 4)
x = np.ones((24, 24))
measured = xcorr.empirical_receptive_field(stack, x, index)
predicted = rf.mask(index, (24, 24))
print("size measured", measured.size, "predicted", rf.size)
print(
    "the closed form predicts the same set:",
    bool(np.array_equal(measured.mask, predicted)),
)

# %%
gradient = np.asarray(measured.gradient)
(r0, r1), (c0, c1) = rf.bounds(index)
fig, ax = plt.subplots(figsize=(5.4, 5), layout="constrained")
shown = ax.imshow(np.where(gradient == 0, np.nan, gradient), cmap="viridis")
ax.add_patch(
    plt.Rectangle(
        (c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, ec="red", lw=2
    )
)
ax.set_title(
    f"d y[{index[0]}, {index[1]}] / d x: the field of size {rf.size[0]}x{rf.size[1]}\n"
    "(red: the closed form's bounds; blank: no dependence)",
    fontsize=10,
)
fig.colorbar(shown, ax=ax, shrink=0.8, label="gradient")
plt.show()
