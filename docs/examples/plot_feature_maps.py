"""
Feature maps
============

The output of a convolutional layer is a *feature map*: the input seen through one filter. A small
stack — four fixed 3x3 filters, a ReLU, then a strided 3x3 layer that sums each direction with its
opposite — run on the photograph of the edge-detection example, with :func:`xcorr.feature_maps`
keeping every layer's output.
"""

import matplotlib.cbook
import matplotlib.pyplot as plt
import numpy as np

import xcorr

rgb = plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))
image = (rgb[::2, ::2, :3].astype(np.float32) / 255) @ np.array(
    [0.299, 0.587, 0.114], np.float32
)
x = image[None, None]  # (N, C, H, W)

# %%
# The first layer's four filters: two Sobel directions and their negatives.
sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)
filters = np.stack([sobel, -sobel, sobel.T, -sobel.T])[:, None]  # (C_out, C_in, h, w)
first = xcorr.Conv2D(3, in_channels=1, out_channels=4, mode="same", boundary="symm")
first.weight, first.bias = filters, np.zeros(4, np.float32)

# %%
# The second layer halves the resolution (stride 2) and adds rising and falling edges of each
# direction, blurred over 3x3: two maps, vertical and horizontal edges.
second = xcorr.Conv2D(3, in_channels=4, out_channels=2, mode="same", stride=2)
combine = np.zeros((2, 4, 3, 3), np.float32)
combine[0, :2] = combine[1, 2:] = 1 / 9
second.weight, second.bias = combine, np.zeros(2, np.float32)


def relu(a):
    return np.maximum(a, 0)


maps = xcorr.feature_maps([first, relu, second], x)
print([m.shape for m in maps])

# %%
titles = ["Sobel x", "-Sobel x", "Sobel y", "-Sobel y"]
fig, axes = plt.subplots(2, 4, figsize=(10, 5.6), layout="constrained")
for c in range(4):
    axes[0, c].imshow(maps[1][0, c], cmap="magma", vmin=0, vmax=1.5)
    axes[0, c].set_title(f"layer 1, {titles[c]} (ReLU)", fontsize=9)
axes[1, 0].imshow(image, cmap="gray")
axes[1, 0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=9)
for c, name in enumerate(["vertical edges", "horizontal edges"]):
    axes[1, c + 1].imshow(maps[2][0, c], cmap="magma", vmin=0, vmax=0.4)
    axes[1, c + 1].set_title(f"layer 2 (stride 2), {name}", fontsize=9)
axes[1, 3].set_visible(False)
for ax in axes.flat:
    ax.set_axis_off()
plt.show()
