"""
Filtering a signal, smoothing a volume
======================================

The 2-D calls have 1-D and 3-D counterparts with the same options: ``conv1d``/``corr1d`` for
signals and sequences, ``conv3d``/``corr3d`` for volumes and video. Here a low-pass filter takes
the whistle out of an audio-like signal, and a Gaussian smooths the noise off a volume without
blurring it into its frame. The arrays are numpy's; torch tensors, jax arrays or chunked dask
arrays take the same calls.
"""

import matplotlib.pyplot as plt
import numpy as np

import xcorr

# %%
# A signal: a 220 Hz tone with its first overtone, a 2.4 kHz whistle on top and some hiss,
# 50 ms sampled at 16 kHz.
rate = 16_000
t = np.arange(int(0.05 * rate)) / rate
rng = np.random.default_rng(0)
tone = np.sin(2 * np.pi * 220 * t) + 0.4 * np.sin(2 * np.pi * 440 * t)
signal = tone + 0.5 * np.sin(2 * np.pi * 2400 * t) + 0.15 * rng.standard_normal(t.size)

# %%
# A windowed-sinc low-pass filter with its cut-off at 1 kHz: 101 taps, a Hamming window, unit gain
# at 0 Hz. ``conv1d`` flips the kernel (this one is symmetric anyway); ``mode="same"`` keeps the
# signal's length and centres the filter, so the output is not delayed.
taps = np.arange(101) - 50
cutoff = 1000 / rate
lowpass = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(taps.size)
lowpass /= lowpass.sum()
filtered = xcorr.conv1d(signal, lowpass, mode="same")
print(filtered.shape, filtered.dtype)
print("numpy's convolve agrees:", np.allclose(filtered, np.convolve(signal, lowpass, mode="same")))
inner = slice(50, -50)  # away from the ends, where the filter reads the zero fill
print(f"rms error against the clean tone: {np.sqrt(np.mean((signal - tone)[inner] ** 2)):.3f} before, "
      f"{np.sqrt(np.mean((filtered - tone)[inner] ** 2)):.3f} after")

# %%
freqs = np.fft.rfftfreq(t.size, 1 / rate)
fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), layout="constrained")
top.plot(1000 * t, signal, lw=0.8, color="0.6", label="signal")
top.plot(1000 * t, filtered, lw=1.5, label="conv1d(signal, lowpass)")
top.plot(1000 * t, tone, lw=1, ls="--", color="k", label="the tone alone")
top.set(xlabel="time (ms)", xlim=(0, 25))
top.legend(loc="upper right")
bottom.semilogy(freqs, np.abs(np.fft.rfft(signal)), lw=0.8, color="0.6", label="signal")
bottom.semilogy(freqs, np.abs(np.fft.rfft(filtered)), lw=1.2, label="filtered")
bottom.axvline(1000, color="k", lw=0.8, ls=":")
bottom.set(xlabel="frequency (Hz)", ylabel="|spectrum|", xlim=(0, 4000))
bottom.legend(loc="upper right")
plt.show()

# %%
# A volume: a bright ball in a grey 48³ box, with noise. A 5x5x5 Gaussian (sigma 1.2 voxels) smooths
# it; ``boundary="symm"`` mirrors the volume at its faces, so the faces do not darken the way the
# zero fill darkens them.
n = 48
z, y, x = np.mgrid[:n, :n, :n]
ball = ((z - 24) ** 2 + (y - 20) ** 2 + (x - 28) ** 2 < 12**2).astype(np.float32)
volume = 0.5 + ball + 0.4 * rng.standard_normal(ball.shape).astype(np.float32)
g1 = np.exp(-0.5 * (np.arange(-2, 3) / 1.2) ** 2).astype(np.float32)
gauss = np.einsum("i,j,k->ijk", g1, g1, g1)
gauss /= gauss.sum()
smooth = xcorr.corr3d(volume, gauss, mode="same", boundary="symm")
zeros = xcorr.corr3d(volume, gauss, mode="same")
print(smooth.shape, smooth.dtype)
print(f"noise (std inside the ball): {volume[ball > 0].std():.3f} -> {smooth[ball > 0].std():.3f}")
print(f"mean of the outermost layer (the box is 0.5): {zeros[0].mean():.3f} with the zero fill, {smooth[0].mean():.3f} mirrored")

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
for ax, data, title in zip(axes, (volume, zeros, smooth), ("noisy volume", "smoothed, zero fill", "smoothed, mirrored")):
    ax.imshow(data[24], cmap="gray", vmin=0, vmax=2)
    ax.set_title(f"{title} (slice z = 24)")
    ax.set_axis_off()
plt.show()
