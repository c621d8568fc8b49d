"""The planted bugs: one exact source edit each, and the tests that must catch it.

Each mutant names a file of the repository (``xcorr/...`` or
``backends/...``), a snippet that must occur exactly once in it, its
replacement, and the pytest arguments (test files, in the order most likely
to fail first) to run on the mutated copy. The bugs are the plausible ones
of the size-dependent fast paths: band ends, stride and dilation index
arithmetic, the fill term of the kernel gradients, boundary extensions, the
"same" offset, conjugation and batch sums in the VJP.

When the code changes so that a snippet no longer occurs exactly once, the
runner reports the mutant as stale and fails: update the snippet to plant
the same bug in the new code, or remove the mutant with the code it tested.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    bug: str
    k: str = ""  # a pytest -k expression applied to the selection ("" runs all of it)


# Files whose functions numba compiles and caches: their mutants get a fresh numba cache.
NUMBA_SOURCES = frozenset({"backends/_numba_kernels.py", "backends/_jax_numba.py", "backends/_numba_backward.py"})

# Selections: pytest node ids (a file, or a test function with all its parameters). An entry
# starting with "?" is optional: run where its file exists (the fast-path oracle tests).
FAST_PATHS = "?tests/test_fast_paths.py"
NUMPY = (
    FAST_PATHS,
    "tests/test_methods.py::test_every_method_matches_reference",
    "tests/test_methods.py::test_methods_broadcast_batches",
    "tests/test_methods.py::test_numpy_without_numba",
    "tests/test_methods.py::test_numpy_numba_path_batched_kernels_fall_back",
    "tests/test_methods.py::test_numpy_direct_extra_memory_is_a_few_outputs",
    "tests/test_correlate.py::test_stride_and_dilation",
    "tests/test_correlate.py::test_batches_broadcast",
)
# The kernel-gradient tests among NUMBA's: a mutant of numba's kernel gradient compiles its kernels
# afresh, and reaches the tests that use them without compiling every forward variant first.
KGRAD = "(numba or jax) and (gradient or vjp or backward or grad)"
NUMBA = (
    FAST_PATHS,
    "tests/test_methods.py::test_numpy_numba_path",
    "tests/test_methods.py::test_numpy_numba_path_kernel_sizes_batches_and_threads",
    "tests/test_methods.py::test_numpy_numba_backward",
    "tests/test_methods.py::test_numpy_numba_kernel_gradient_threads_batches_and_nan",
    "tests/test_jax_backward.py",
)
TORCH = (
    FAST_PATHS,
    "tests/test_torch_backward.py",
    "tests/test_methods.py::test_torch_large_direct_forward_and_backward",
    "tests/test_methods.py::test_torch_kernel_gradient_of_a_large_image",
    "tests/test_methods.py::test_every_method_matches_reference",
    "tests/test_correlate.py::test_modes_and_boundaries",
    "tests/test_correlate.py::test_stride_and_dilation",
)
JAX = (
    FAST_PATHS,
    "tests/test_jax_backward.py",
    "tests/test_methods.py::test_every_method_matches_reference",
    "tests/test_methods.py::test_large_kernel_paths",
    "tests/test_correlate.py::test_modes_and_boundaries",
    "tests/test_correlate.py::test_stride_and_dilation",
    "tests/test_gradients.py::test_framework_gradients_equal_finite_differences",
    "tests/test_gradients.py::test_jax_grad_equals_grad_of_a_plain_jnp_reference",
    "tests/test_gradients.py::test_jax_batch_kernel_gradient_and_padded_extension",
)
FFT = (
    FAST_PATHS,
    "tests/test_methods.py::test_every_method_matches_reference",
    "tests/test_methods.py::test_numpy_overlap_save_matches_direct",
    "tests/test_methods.py::test_numpy_fft_backward",
    "tests/test_methods.py::test_vjp_kernel_gradient_through_fft_and_direct_match_reference",
    "tests/test_methods.py::test_large_kernel_paths",
    "tests/test_torch_backward.py::test_fft_backward",
)
CORE = (
    "tests/test_correlate.py::test_modes_and_boundaries",
    "tests/test_correlate.py::test_stride_and_dilation",
    "tests/test_correlate.py::test_kernel_larger_than_input_repeats_the_extension",
    "tests/test_gradients.py::test_vjp_equals_finite_differences",
    "tests/test_gradients.py::test_gradient_dtypes",
)
PADDING = ("tests/test_padding.py", "tests/test_boundaries.py")
VJP = (
    FAST_PATHS,
    "tests/test_gradients.py",
    "tests/test_correlate.py::test_batches_broadcast",
    "tests/test_methods.py::test_methods_broadcast_batches",
)

MUTANTS: tuple[Mutant, ...] = (
    # -- numpy's banded direct path (every numpy user without numba; batched kernels with it)
    Mutant(
        "numpy-band-end",
        "backends/numpy.py",
        "r1 = min(rows.count, r0 + band)",
        "r1 = min(rows.count, r0 + band - 1)",
        NUMPY,
        "each band of the numpy direct path ends one row early (that row is left uninitialised)",
        k="numpy",
    ),
    Mutant(
        "numpy-band-stride",
        "backends/numpy.py",
        "lo = r0 * rows.step + a * rows.dilation",
        "lo = r0 + a * rows.dilation",
        NUMPY,
        "bands after the first start at output row r0 instead of input row r0 * stride",
        k="numpy",
    ),
    Mutant(
        "numpy-band-dilation",
        "backends/numpy.py",
        "lo = r0 * rows.step + a * rows.dilation",
        "lo = r0 * rows.step + a * rows.step",
        NUMPY,
        "kernel row a is read at a * stride instead of a * dilation",
        k="numpy",
    ),
    Mutant(
        "numpy-extension-band-start",
        "backends/numpy.py",
        "lo = rows.lo + r0 * rows.step",
        "lo = rows.lo + r0",
        ("tests/test_fast_paths.py::test_numpy_extension_in_bands_matches_reference",),
        "each band of a wrap/symm/reflect/edge extension starts at input row r0 instead of r0 * stride",
        k="numpy",
    ),
    # -- numba kernels (numpy's direct path and VJP, jax's custom calls)
    Mutant(
        "numba-corr-row-stride",
        "backends/_numba_kernels.py",
        "        top = r0 + i * sr\n        if sc != 1:",
        "        top = r0 + i\n        if sc != 1:",
        NUMBA,
        "numba forward: output row i reads input row r0 + i, ignoring the row stride",
        k="numba or jax",
    ),
    Mutant(
        "numba-row-dilation",
        "backends/_numba_kernels.py",
        "x0 = source(x, fillrow, top + a0 * dr, c0 + b0 * dc, cols)",
        "x0 = source(x, fillrow, top + a0 * dc, c0 + b0 * dc, cols)",
        NUMBA,
        "numba forward: the first tap of each group of four uses the column dilation for its row",
        k="numba or jax",
    ),
    Mutant(
        "numba-fused-backward-chunk-rows",
        "backends/_numba_backward.py",
        "t = 0 if first == 0 else min(max(first - lo_r, 0), G)",
        "t = 0 if first == 0 else min(max(first - lo_r + 1, 0), G)",
        ("tests/test_numba_backward.py", *NUMBA),
        "fused numba backward: a chunk of rows after the first skips the first row of g assigned to it "
        "in the kernel gradient",
    ),
    Mutant(
        "numba-kgrad-fill",
        "backends/_numba_kernels.py",
        "acc[a, b] += fill * total",
        "acc[a, b] -= fill * total",
        NUMBA,
        "numba kernel gradient: the fill rows' term has the wrong sign",
        k=KGRAD,
    ),
    Mutant(
        "numba-kgrad-stride",
        "backends/_numba_kernels.py",
        "first = c0 + b * dc + lo * sc",
        "first = c0 + b * dc + lo",
        NUMBA,
        "numba kernel gradient with a column stride: the inner columns start at lo instead of lo * stride",
        k=KGRAD,
    ),
    Mutant(
        "numba-vjp-dilation",
        "backends/_numba.py",
        "g_r0 = -rows.lo - (h - 1) * rows.dilation",
        "g_r0 = -rows.lo - (h - 1)",
        ("tests/test_numba_backward.py", *NUMBA),
        "numba VJP, chunked and fused (their shared operands): the input gradient's first row ignores the "
        "row dilation",
        k="numba or jax",
    ),
    Mutant(
        "numba-fused-vjp-dilation",
        "backends/_numba_backward.py",
        "args = (rows.lo, cols.lo, rows.dilation, cols.dilation, g_r0, g_c0, group)",
        "args = (rows.lo, cols.lo, 1, cols.dilation, g_r0, g_c0, group)",
        ("tests/test_numba_backward.py", *NUMBA),
        "fused numba backward: both gradients' taps ignore the row dilation",
        k="numba or jax",
    ),
    # -- torch's direct path, clipped windows and bmm kernel gradient
    Mutant(
        "torch-direct-stride",
        "backends/torch/ops.py",
        "p = row_at + lo * rows.step",
        "p = row_at + lo",
        TORCH,
        "torch direct: a band (or clipped window) starting at output row lo reads input row lo, not lo * stride",
        k="torch",
    ),
    Mutant(
        "torch-clipped-first",
        "backends/torch/ops.py",
        "i0 = min(plan.count, max(0, -(first // plan.step)))",
        "i0 = min(plan.count, max(0, -first // plan.step))",
        TORCH,
        "torch zero-fill clipping: floor instead of ceil for the first output whose tap lies inside x",
        k="torch",
    ),
    Mutant(
        "torch-kgrad-dilation",
        "backends/torch/ops.py",
        "xq.storage_offset() + r0 * rows.step * rs + b * cols.dilation * cs",
        "xq.storage_offset() + r0 * rows.step * rs + b * cs",
        TORCH,
        "torch bmm kernel gradient: kernel column b read at b instead of b * dilation",
        k="torch",
    ),
    Mutant(
        "torch-kgrad-fill",
        "backends/torch/ops.py",
        "    xe = _extend(xp, xc, geometry, options)\n    if xe.stride(-1) != 1:",
        '    xe = _extend(xp, xc, geometry, __import__("dataclasses").replace(options, fillvalue=0))\n'
        "    if xe.stride(-1) != 1:",
        TORCH,
        "torch bmm kernel gradient: the fill value is taken as 0 (its term is lost)",
        k="torch",
    ),
    Mutant(
        "torch-backward-conj",
        "backends/torch/autodiff.py",
        "gx = None if gx is None else gx.conj()",
        "gx = None if gx is None else gx",
        TORCH,
        "torch backward of complex inputs: the input gradient misses torch's conjugation",
        k="torch",
    ),
    # -- jax: unrolled shift-and-add, fori_loop, kernel gradients
    Mutant(
        "jax-pad-dilation",
        "backends/jax/ops.py",
        "first = plan.lo + tap * plan.dilation",
        "first = plan.lo + tap",
        JAX,
        "jax direct with a fill extension (a pad per tap): tap positions ignore the dilation",
        k="jax",
    ),
    Mutant(
        "jax-pad-stride",
        "backends/jax/ops.py",
        "return term[..., :: rows.step, :: cols.step]",
        "return term[..., :: rows.step, :: rows.step]",
        JAX,
        "jax direct with a pad per tap: the column stride is the row stride",
        k="jax",
    ),
    Mutant(
        "jax-fori-dilation",
        "backends/jax/ops.py",
        "band = lax.dynamic_slice_in_dim(xe, a * rows.dilation, length, axis=xe.ndim - 2)",
        "band = lax.dynamic_slice_in_dim(xe, a * rows.step, length, axis=xe.ndim - 2)",
        JAX,
        "jax fori_loop path (kernels of more than UNROLL_TAPS taps): kernel row a read at a * stride",
        k="jax",
    ),
    Mutant(
        "jax-kgrad-fill",
        "backends/jax/ops.py",
        "    gb = xp.reshape(g, (-1, *g.shape[-2:]))\n    consts = xp.asarray([options.fillvalue, 0], dtype=x.dtype)",
        "    gb = xp.reshape(g, (-1, *g.shape[-2:]))\n    consts = xp.asarray([0, 0], dtype=x.dtype)",
        JAX,
        "jax's numba kernel gradient (custom call): the fill value is passed as 0 (its term is lost)",
        k="jax",
    ),
    Mutant(
        "jax-kgrad-sum-swap",
        "backends/jax/ops.py",
        "return _planes_as_channels(xp, xe, g, tuple(g.shape[:-2]), swapped.stride, swapped.dilation)",
        "return _planes_as_channels(xp, xe, g, tuple(g.shape[:-2]), swapped.dilation, swapped.stride)",
        JAX,
        "jax native kernel gradient (batch sum as channels): stride and dilation not swapped",
        k="jax",
    ),
    # -- FFT: image-sized and overlap-save
    Mutant(
        "fft-col-stride",
        "xcorr/_fft.py",
        "slice(a.span - 1, a.span + (a.count - 1) * a.step, a.step) for a in geometry.axes",
        "slice(a.span - 1, a.span + (a.count - 1) * a.step, geometry.axes[0].step) for a in geometry.axes",
        FFT,
        "FFT forward: every axis (the columns too) is subsampled by the first axis's stride",
        k="fft or overlap or large_kernel",
    ),
    Mutant(
        "fft-dilation-swap",
        "xcorr/_fft.py",
        "kf = xp.flip(dilate(xp, k, tuple(a.dilation for a in geometry.axes)), axis=axes)",
        "kf = xp.flip(dilate(xp, k, tuple(a.dilation for a in reversed(geometry.axes))), axis=axes)",
        FFT,
        "FFT forward: the kernel is dilated with the two axes' dilations swapped",
        k="fft or overlap or large_kernel",
    ),
    Mutant(
        "overlap-save-stride",
        "backends/_numpy_fft.py",
        "y = y[..., : dense_r : rows.step, : dense_c : cols.step].astype(x.dtype, copy=False)",
        "y = y[..., : dense_r : rows.step, : dense_c : rows.step].astype(x.dtype, copy=False)",
        FFT,
        "numpy overlap-save forward: the columns are subsampled by the row stride",
        k="fft or overlap or large_kernel",
    ),
    Mutant(
        "tiled-fft-vjp-far-tiles",
        "backends/_numpy_fft.py",
        "for r_off, c_off in itertools.product(offsets_r, offsets_c):",
        "for r_off, c_off in itertools.product(offsets_r[:2], offsets_c[:2]):",
        ("tests/test_fast_paths.py::test_tiled_fft_vjp_adds_every_tile_a_full_convolution_reaches",),
        "numpy's tiled FFT VJP: a tile's full convolution is added onto the next tile only, not the ones past it",
    ),
    Mutant(
        "numpy-fused-vjp-fft-on-nan",
        "backends/numpy.py",
        'if options.method == "auto" and not toolkit.fft_allowed(ADAPTER, xp, x, k, g):',
        "if False:",
        ("tests/test_methods.py::test_numpy_fft_backward_falls_back_where_it_does_not_apply",),
        'numpy\'s fused VJP takes the FFT for "auto" with a NaN in g, spreading it over both gradients',
    ),
    Mutant(
        "dask-corr2d-transpose-flipped-kernel",
        "backends/dask.py",
        "correlate_multi_transpose(xp, xb.reshape((planes, 1, H, W)), k.reshape((1, 1, h, w)), tp)",
        "correlate_multi_transpose(xp, xb.reshape((planes, 1, H, W)), k[..., ::-1, ::-1].reshape((1, 1, h, w)), tp)",
        ("tests/test_dask_transpose.py", "tests/test_nonfinite.py::test_transposed_convolution_with_infinite_taps_matches_torch"),
        "dask's single-plane transposed correlation (corr2d_transpose, one kernel for every plane) flips the kernel: the convolution's orientation",
        k="corr2d_transpose or corr3d_transpose or dask",
    ),
    Mutant(
        "dask-transpose-block-offset",
        "backends/dask.py",
        "(rc.offset, rc.extent - rc.offset - hw[1])",
        "(0, rc.extent - hw[1])",
        ("tests/test_dask_transpose.py", "tests/test_transpose.py"),
        "dask's conv_transpose2d: each output block keeps the first columns of its window's scatter, not the block's own",
        k="dask",
    ),
    Mutant(
        "dispatch-integer-cast-dropped",
        "xcorr/_options.py",
        "    return tuple(a if a is None or not isdtype(xp, a.dtype, \"integral\") else xp.astype(a, dtype) for a in arrays)",
        "    return arrays",
        ("tests/test_integer_rule.py",),
        "the public dispatch hands an integer operand of a floating call to the adapter uncast: numpy's "
        "corr2d_multi GEMM path then promotes int64 with float32 to float64 (numpy's rule), not float32",
        k="floating_dtype and numpy",
    ),
    Mutant(
        "numba-fused-vjp-convolution-flip",
        "backends/_numba.py",
        "    return gx, (gk[::-1, ::-1].copy() if options.convolve else gk)",
        "    return gx, gk",
        ("tests/test_torch_backward.py",),
        "numba's fused backward returns a convolution's kernel gradient in the correlation's orientation",
        k="fused_numba",
    ),
    Mutant(
        "jax-inside-outputs-left-to-xla",
        "backends/jax/ops.py",
        "    return geometry.inside or (options.boundary == \"fill\" and cols.step == 1)",
        "    return not geometry.inside and options.boundary == \"fill\" and cols.step == 1",
        ("tests/test_jax_backward.py",),
        "outputs inside x go to XLA's shift-and-add, which a loss's reduction fuses into a pass per tap",
        k="loss_over",
    ),
    Mutant(
        "fft-kgrad-lags",
        "xcorr/_fft.py",
        "gk = fft.irfft(lags, n=width, axis=-1)[..., : last.span : last.dilation]",
        "gk = fft.irfft(lags, n=width, axis=-1)[..., : last.span : geometry.axes[0].dilation]",
        FFT,
        "FFT VJP (numpy, torch, generic; numpy's tiles too): the kernel gradient's column lags are taken every row-dilation-th",
        k="fft or overlap or large_kernel",
    ),
    Mutant(
        "fft-vjp-crop-cols",
        "xcorr/_fft.py",
        "ge = _fill_axis(xp, ge, axis, -a.lo, a.size - 1 - a.lo, 0)",
        "ge = _fill_axis(xp, ge, axis, -geometry.axes[0].lo, a.size - 1 - geometry.axes[0].lo, 0)",
        FFT,
        "FFT VJP (numpy, torch, generic; numpy's tiles too): every axis of the input gradient (the columns too) "
        "is cropped at the first axis's offset",
        k="fft or overlap or large_kernel",
    ),
    # -- the core: extensions, the 'same' offset, the VJP
    Mutant(
        "wrap-symm-swap",
        "xcorr/_direct.py",
        'elif boundary == "wrap":',
        'elif boundary == "symm":',
        CORE,
        'boundary extension: "wrap" reflects and "symm" wraps',
        k="numpy or array_api_strict",
    ),
    Mutant(
        "same-offset",
        "xcorr/_options.py",
        "dense, offset = size, ((span - 1) // 2 if convolve else span // 2)",
        "dense, offset = size, (span // 2 if convolve else (span - 1) // 2)",
        CORE,
        "'same' mode centres even kernels as the other operation does (correlation vs convolution)",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "windows-take-the-first-axis-padding",
        "xcorr/_options.py",
        "plan_axis(size, t, d, s, options.mode, options.convolve, None if pads is None else pads[i])",
        "plan_axis(size, t, d, s, options.mode, options.convolve, None if pads is None else pads[0])",
        ("tests/test_padding.py", "tests/test_three_d.py"),
        "the one planner of 1, 2 and 3 axes pads every axis as the first (rows', or depth's) padding says",
        k="numpy",
    ),
    Mutant(
        "vjp-conj",
        "xcorr/_composite.py",
        'gc = xp.conj(g) if isdtype(xp, g.dtype, "complex floating") else g',
        "gc = g",
        VJP,
        "core kernel gradient on numpy (vecdot conjugates its first argument): g not conjugated first",
        k="complex",
    ),
    Mutant(
        "unbroadcast-first",
        "xcorr/_direct.py",
        "a = sum_wrapping(xp, a, tuple(range(extra)))",
        "a = a[(0,) * extra]",
        VJP,
        "VJP of a broadcast operand: the first batch element's gradient instead of the batch sum",
        k="batch or broadcast",
    ),
    # -- transposed convolution: the crop of the uncropped result, lax's pads
    Mutant(
        "transpose-crop-top",
        "xcorr/_composite.py",
        'y = extend_axis(xp, full, -2, top, top + rows - 1, "fill", 0)',
        'y = extend_axis(xp, full, -2, 0, rows - 1, "fill", 0)',
        ("tests/test_transpose.py",),
        "conv_transpose2d crops its padding from the bottom only (numpy and generic paths)",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "jax-transpose-pads",
        "backends/jax/ops.py",
        "(dh * (h - 1) - top, dh * (h - 1) - bottom + ops[0]),",
        "(dh * (h - 1) - bottom, dh * (h - 1) - top + ops[0]),",
        ("tests/test_transpose.py",),
        "jax's transposed convolution swaps the top and bottom crops (asymmetric padding)",
        k="jax",
    ),
    # -- padding= and the reflect/edge boundaries (issue 12)
    Mutant(
        "reflect-repeats-edge",
        "xcorr/_direct.py",
        "                src = period - m\n",
        "                src = period - m + 1\n",
        PADDING,
        'boundary="reflect": the mirrored run past the edge starts at the edge (repeated, as "symm")',
        k="reflect and (numpy or property)",
    ),
    Mutant(
        "same-padding-odd-before",
        "xcorr/_padding.py",
        'return (small, large) if name == "SAME" else (large, small)',
        'return (large, small) if name == "SAME" else (small, large)',
        PADDING,
        'padding="SAME": the odd padding element goes before the image (lax\'s SAME_LOWER) instead of after',
        k="SAME or same",
    ),
    Mutant(
        "edge-fold-first-copy",
        "xcorr/_direct.py",
        "piece = sum_wrapping(xp, take_axis(xp, ge, axis, position, position + n), axis, keepdims=True)",
        "piece = take_axis(xp, ge, axis, position, position + 1)",
        PADDING,
        'VJP of boundary="edge": only the first replicated position\'s gradient is folded onto the edge pixel',
        k="vjp or gradients or property",
    ),
    # -- issue 26: planted bugs that survived the suite
    Mutant(
        "same-padding-negative-total",
        "xcorr/_padding.py",
        "else max((-(-n // stride) - 1) * stride + span - n, 0)",
        "else (-(-n // stride) - 1) * stride + span - n",
        (
            "tests/test_padding.py::test_same_padding_where_the_stride_exceeds_the_kernel_skips_pixels",
            "tests/test_padding.py::test_same_padding_with_a_stride_beyond_the_kernel_matches_lax",
        ),
        'padding="SAME" without the clamp at 0: a stride beyond the dilated kernel pads negatively (crops the image)',
        k="numpy or array_api_strict or torch or jax or dask",
    ),
    Mutant(
        "transpose-vjp-crop-bottom",
        "xcorr/_composite.py",
        "(top, _), (left, _) = tp.padding\n    rows, cols = tp.geometry.rows, tp.geometry.cols",
        "(_, top), (_, left) = tp.padding\n    rows, cols = tp.geometry.rows, tp.geometry.cols",
        (
            "tests/test_transpose.py::test_vjp_with_asymmetric_padding_equals_torch_autograd_of_the_crop",
            "tests/test_transpose.py::test_single_plane_vjp_with_asymmetric_padding_equals_torch_autograd",
        ),
        "conv_transpose2d's VJP places the output gradient at the bottom/right padding instead of the top/left",
        k="numpy or array_api_strict or dask",
    ),
    Mutant(
        "multi-jvp-tangent-fill",
        "xcorr/_jvp.py",
        "terms = [] if dx is None else [_forward(call, dx, k, tangent_options(options))]",
        "terms = [] if dx is None else [_forward(call, dx, k, options)]",
        ("tests/test_forward_mode.py::test_public_multi_jvp_with_a_fill_equals_finite_differences",),
        "corr2d_multi_jvp pads the tangent dx with the primal's fillvalue instead of 0",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "one-d-same-centring",
        "xcorr/_one_d.py",
        "centred = (span // 2, (span - 1) // 2)",
        "centred = ((span - 1) // 2, span // 2)",
        ("tests/test_one_d.py",),
        'corr1d\'s "same" mode centres an even kernel as correlate2d does (one sample right), '
        "not as scipy.signal.correlate and numpy.correlate",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "one-d-transpose-pads-swapped",
        "xcorr/_one_d_transpose.py",
        'return out, {"padding": ((0, 0), pair), "output_padding": (0, op)}',
        'return out, {"padding": ((0, 0), pair[::-1]), "output_padding": (0, op)}',
        ("tests/test_one_d_transpose_jvp.py",),
        "conv_transpose1d and corr1d_transpose crop their (left, right) padding from the wrong ends",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "one-d-multi-jvp-direction-layout",
        "xcorr/_one_d_jvp.py",
        "(xr, dxr), (wr, dwr) = _rows(xp, axis, x, dx), _rows(xp, -2, w, dw)",
        "(xr, dxr), (wr, dwr) = _rows(xp, axis, x, dx), _rows(xp, -2, w, None)",
        ("tests/test_one_d_transpose_jvp.py",),
        "corr1d_multi_jvp drops the weight's direction dw (only the dx term of the tangent)",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "native-nd-pads-swapped",
        "xcorr/_composite.py",
        "pads.append((-p.lo, max(p.hi - (x.shape[axis] - 1), 0)))",
        "pads.append((max(p.hi - (x.shape[axis] - 1), 0), -p.lo))",
        ("tests/test_native_nd.py",),
        "corr1d_multi/corr3d_multi's native call pads each axis after it by what belongs before it",
    ),
    Mutant(
        "one-d-stride-on-rows",
        "xcorr/_one_d.py",
        '"fillvalue": fillvalue, "stride": (1, s), "dilation": (1, d)}',
        '"fillvalue": fillvalue, "stride": (s, 1), "dilation": (1, d)}',
        ("tests/test_one_d.py",),
        "corr1d puts the stride on the unit row axis of the 2-D call (a no-op there) instead of the signal's",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "three-d-depth-stride-ignored",
        "xcorr/_three_d_checks.py",
        'strides, dilations = _triple("stride", given["stride"]), _triple("dilation", given["dilation"])',
        'strides, dilations = (1, *_triple("stride", given["stride"])[1:]), _triple("dilation", given["dilation"])',
        ("tests/test_three_d.py",),
        "corr3d plans the depth taps' slices without the depth stride (the 2-D calls still get the height "
        "and width strides), so every output depth is kept",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "three-d-conv-depth-taps-unflipped",
        "xcorr/_three_d.py",
        "return xp.flip(k, axis=(-3, -2, -1))",
        "return xp.flip(k, axis=(-2, -1))",
        ("tests/test_three_d.py",),
        "conv3d flips the kernel's height and width but not its depth taps (their order as in corr3d)",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "three-d-vjp-tap-without-dilation",
        "xcorr/_three_d.py",
        "before = tap * plan.dilation",
        "before = tap",
        ("tests/test_three_d.py",),
        "corr3d_vjp puts a depth tap's gradient back at its tap index, not at the dilated position it read",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "three-d-batched-depth-tap-squeezed",
        "xcorr/_three_d.py",
        "return k[j, :, :] if k.ndim == 3 else k[..., j : j + 1, :, :]",
        "return k[..., j, :, :]",
        ("tests/test_three_d.py",),
        "corr3d hands a batched kernel's depth tap to corr2d without its depth axis, so the kernel's batch "
        "axes line up with the input's depths instead of its batch",
        k="numpy or array_api_strict",
    ),
    Mutant(
        "three-d-half-rounded-per-tap",
        "xcorr/_three_d.py",
        "    if not half_precision(dtype):\n        return arrays\n",
        "    if True:\n        return arrays\n",
        ("tests/test_half_precision_nd.py",),
        "half-precision 3-D correlations sum the depth taps' rounded half results, rounding once per tap",
        k="numpy",
    ),
    Mutant(
        "three-d-half-fill-not-held",
        "xcorr/_three_d.py",
        'return tuple({**d, "fillvalue": half_value(xp, dtype, d["fillvalue"])} for d in dicts)',
        "return dicts",
        ("tests/test_half_precision_nd.py",),
        "a widened half-precision 3-D correlation fills with the float32 fill value, not the one the half dtype holds",
        k="numpy",
    ),
    Mutant(
        "multi-front-key-without-layout",
        "xcorr/_call.py",
        "key = (*public_key(op, x, w, given), type(groups), groups, data_format, bias_signature)",
        "key = (*public_key(op, x, w, given), type(groups), groups, bias_signature)",
        ("tests/test_one_d.py::test_a_prepared_multi_call_serves_its_signature_only",),
        "a channels-last corr1d_multi call of a channels-first signature's shapes takes the channels-first prepared call",
        k="numpy",
    ),
    Mutant(
        "three-d-fft-nan-spreads",
        "xcorr/_three_d.py",
        'if whole == "fft" or (whole == "auto" and fft_allowed(adapter, xp, x, k)):',
        "if whole:",
        ("tests/test_three_d.py::test_auto_takes_one_fft_of_the_volume_for_large_kernels_only",),
        'method="auto" takes the whole-volume FFT of a 3-D correlation whose input holds a NaN, spreading it',
    ),
    Mutant(
        "auto-fft-reads-traced-values",
        "backends/torch/adapter.py",
        "return not (autodiff.tracing(*arrays) or any(functorch(a) for a in arrays))",
        "return True",
        ("tests/test_torch_compile.py::test_traced_and_vmapped_tensors_take_the_direct_result_where_eager_ones_take_the_fft",),
        'method="auto" reads the values of torch.compile\'s tracers and vmapped tensors before an FFT (it raises)',
    ),
    Mutant(
        "compiler-traces-the-vjps",
        "backends/torch/layers.py",
        "for _function in toolkit.ARRAY_FUNCTIONS:",
        "for _function in toolkit.ARRAY_FUNCTIONS[:15]:",
        ("tests/test_torch_compile.py::test_every_array_function_compiles_into_one_graph",),
        "torch.compile traces the VJPs' and JVPs' Python instead of taking them whole (a graph break)",
    ),
    Mutant(
        "finite-or-reads-tracers",
        "xcorr/_adapter.py",
        "finite = self.values_visible(a) and bool(xp.all(xp.isfinite(a)))",
        "finite = bool(xp.all(xp.isfinite(a)))",
        ("tests/test_torch_compile.py::test_every_array_function_compiles_into_one_graph",),
        "the transposed functions read a traced kernel's values (torch.compile fails)",
    ),
    Mutant(
        "auto-kernel-gradient-fft-on-nan",
        "xcorr/_composite.py",
        'if options.method == "auto" and method == "fft":\n            # A NaN or inf in x or g',
        'if False:\n            # A NaN or inf in x or g',
        ("tests/test_nonfinite.py::test_auto_vjp_keeps_a_nan_pixel_on_the_taps_that_read_it",),
        'a VJP whose "auto" picked the FFT takes the kernel gradient by FFT with a NaN in x, spreading it',
    ),
    Mutant(
        "jax-grouped-planes-spread-nan",
        "backends/jax/ops.py",
        "    if k.ndim == 2:\n        return native(x, k)",
        "    if True:\n        return native(x, k)",
        ("tests/test_nonfinite.py::test_native_planes_with_their_own_kernels_keep_a_nan_in_its_plane",),
        "jax's per-plane kernels go through XLA's grouped convolution with a NaN, which puts it on every plane",
    ),
    Mutant(
        "jax-grouped-direct-limit-exclusive",
        "backends/jax/adapter.py",
        "groups > 1 and per_group <= limit",
        "groups > 1 and per_group < limit",
        (
            "tests/test_fast_paths.py::test_jax_auto_takes_the_direct_method_for_groups_of_few_channels",
            "tests/test_fast_paths.py::test_jax_transposed_convolutions_of_few_channels_per_group_skip_lax",
        ),
        "groups of exactly the limit's input channels (grouped_direct_channels, grouped_transpose_direct_channels) go to XLA's slow grouped convolution",
    ),
    Mutant(
        "jax-grouped-transpose-channels-per-group-misread",
        "backends/jax/adapter.py",
        "_few_per_group_on_cpu(groups, w.shape[0] // groups,",
        "_few_per_group_on_cpu(groups, w.shape[1],",
        ("tests/test_fast_paths.py::test_jax_transposed_convolutions_of_few_channels_per_group_skip_lax",),
        "a transposed weight's input channels per group read from its output-channel axis (C_out // groups): wide groups go to the generic adjoint",
    ),
    Mutant(
        "half-vjp-rounded-per-term",
        "xcorr/_prepared.py",
        "return in_float32(call, dtype, vjp, *arrays) if half_precision(dtype) else vjp(call, *arrays)",
        "return vjp(call, *arrays)",
        ("tests/test_half_precision_nd.py",),
        "the public VJPs of half-precision operands sum in the half dtype, rounding the kernel gradient once per term",
        k="vjp and (numpy or torch)",
    ),
    Mutant(
        "half-jvp-two-roundings",
        "xcorr/_jvp.py",
        "    if half_precision(dtype):  # both terms in float32, their sum rounded once\n",
        "    if False:\n",
        ("tests/test_half_precision_nd.py",),
        "a half-precision JVP rounds each of its two terms and then their sum",
        k="jvp and (numpy or torch)",
    ),
    Mutant(
        "three-d-jvp-fill-has-a-tangent",
        "xcorr/_three_d_jvp.py",
        'linear = {**options, "fillvalue": 0} if _boundary(options) == "fill" else options',
        "linear = options",
        ("tests/test_three_d_transpose_jvp.py",),
        "corr3d_jvp extends dx with the fill value (the affine map's constant) instead of zeros, so a "
        "non-zero fill leaks into the tangent",
        k="single_jvp and (numpy or array_api_strict)",
    ),
    Mutant(
        "three-d-transpose-tap-without-dilation",
        "xcorr/_three_d_transpose.py",
        "before = tap * depth.dilation",
        "before = tap",
        ("tests/test_three_d_transpose_jvp.py",),
        "conv_transpose3d places a depth tap's planes at its tap index, not at the dilated depth it reaches",
        k="(conv_transpose3d or corr3d_transpose) and (numpy or array_api_strict)",
    ),
)
