"""
Edge detection on a photograph
==============================

The seed notebook finds the vertical edges of a 6x8 toy image with the kernel ``[[1, -1]]``. Here the
same call runs on a real photograph — Grace Hopper, the sample image that ships inside matplotlib —
with the seed's kernel, the Sobel pair and a Laplacian. The arrays are numpy's; torch tensors, jax
arrays or a chunked dask array of a larger image take the same calls.
"""

import matplotlib.cbook
import matplotlib.pyplot as plt
import numpy as np

import xcorr

# %%
# The image, as floating-point luma in 0..1 (ITU-R BT.601 weights).
rgb = plt.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg"))
image = (rgb[..., :3].astype(np.float32) / 255) @ np.array(
    [0.299, 0.587, 0.114], np.float32
)
print(image.shape, image.dtype)

# %%
# Four kernels. ``mode="same"`` keeps the image size; ``boundary="symm"`` mirrors the image at its
# edges, so the frame of the photograph does not show up as an edge.
seed = np.array([[1.0, -1.0]], np.float32)
sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)
sobel_y = sobel_x.T.copy()
laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)

opts = {"mode": "same", "boundary": "symm"}
vertical = xcorr.corr2d(image, seed, **opts)
gx, gy = xcorr.corr2d(image, sobel_x, **opts), xcorr.corr2d(image, sobel_y, **opts)
magnitude = np.hypot(gx, gy)
second = xcorr.corr2d(image, laplacian, **opts)

# %%
fig, axes = plt.subplots(2, 2, figsize=(8, 8.5), layout="constrained")
panels = [
    (image, "the image", "gray", None),
    (np.abs(vertical), "seed kernel [[1, -1]]: |response|", "magma", 0.3),
    (magnitude, "Sobel gradient magnitude", "magma", 1.5),
    (np.abs(second), "Laplacian: |response|", "magma", 0.6),
]
for ax, (data, title, cmap, vmax) in zip(axes.flat, panels):
    ax.imshow(data, cmap=cmap, vmin=0, vmax=vmax)
    ax.set_title(title)
    ax.set_axis_off()
plt.show()

# %%
# Boundaries
# ----------
# At the frame, the boundary decides what the kernel sees beyond the image. On a crop of the face,
# zeros (``"fill"``) make a bright false edge all around, the periodic extension (``"wrap"``) an edge
# wherever opposite sides differ, and the mirror (``"symm"``) none.
crop = image[180:260, 180:340]
fig, axes = plt.subplots(2, 2, figsize=(9, 5), layout="constrained")
axes[0, 0].imshow(crop, cmap="gray", vmin=0, vmax=1)
axes[0, 0].set_title("the crop")
for ax, boundary in zip(axes.flat[1:], ["fill", "wrap", "symm"]):
    rx = xcorr.corr2d(crop, sobel_x, mode="same", boundary=boundary)
    ry = xcorr.corr2d(crop, sobel_y, mode="same", boundary=boundary)
    ax.imshow(np.hypot(rx, ry), cmap="magma", vmin=0, vmax=1.5)
    ax.set_title(f'Sobel magnitude, boundary="{boundary}"')
for ax in axes.flat:
    ax.set_axis_off()
plt.show()
