"""torch's fast paths: the banded in-place shift-and-add, few-output dot products, ``F.conv2d`` and the
bmm kernel gradient, on the adapters' shared worker pool; ``tuning`` is the adapter's."""

from __future__ import annotations

import functools
import threading
from dataclasses import replace

import torch
import torch.autograd.forward_ad as _forward_ad

from ... import toolkit
from ...toolkit import result_dtype
from .. import _threads
from .functional import conv_planes, pad_mode

try:
    from .. import _hugepages
except ImportError:  # the optional huge-page advice removed
    _hugepages = None
try:
    from .. import _numba
except ImportError:  # the optional numba path removed: torch's own code serves every call
    _numba = None

# torch has uint16/32/64 tensors but few kernels for them (no add, no mul).
UNSIGNED_WIDE = frozenset({torch.uint16, torch.uint32, torch.uint64})


def unsigned(tuning, xp, x, k, options, geometry):
    """uint16/32/64 correlations in int64, as numpy computes them: modulo ``2**bits``.

    Sums and products of integers modulo ``2**64`` (int64's wrap-around,
    two's complement) reduced modulo ``2**bits`` are those of the unsigned
    dtype; uint64 is reinterpreted bit for bit (``view``), the narrower ones
    widened and narrowed back (a modular cast). The dtypes of ``x`` and
    ``k`` are equal here: torch promotes them with no other dtype.
    """
    dtype = x.dtype
    fill = options.fillvalue
    if dtype == torch.uint64:
        x, k = x.view(torch.int64), k.view(torch.int64)
        fill = int(fill) - (1 << 64) if int(fill) >= 1 << 63 else int(fill)  # the same bits as int64
    else:
        x, k = x.to(torch.int64), k.to(torch.int64)
    y = forward(tuning, xp, x, k, replace(options, fillvalue=fill), geometry)
    return y.view(dtype) if dtype == torch.uint64 else y.to(dtype)


def _extend(xp, x, geometry, options):
    """``toolkit.extend``, with "reflect", "edge" and "wrap" as one ``F.pad`` for float32/float64 where torch
    has the mode: one tensor written once, where the generic extension concatenates once per axis."""
    rows, cols = geometry.rows, geometry.cols
    if not geometry.inside and options.boundary != "fill" and x.dtype in (torch.float32, torch.float64):
        top, left = max(0, -rows.lo), max(0, -cols.lo)
        pads = (left, max(0, cols.hi - cols.size + 1), top, max(0, rows.hi - rows.size + 1))
        xe = pad_mode(x, options.boundary, geometry, pads)
        if xe is not None:
            return xe[..., rows.lo + top : rows.hi + top + 1, cols.lo + left : cols.hi + left + 1]
    return toolkit.extend(xp, x, geometry, options)


def forward(tuning, xp, x, k, options, geometry):
    """Fastest forward computation for torch tensors (no autograd recorded).

    ``options.method`` is already resolved by ``xcorr._methods``: "fft" goes
    through ``torch.fft`` real transforms, "native" through
    ``torch.nn.functional.conv2d``, "direct" through a row-tiled in-place
    shift-and-add (``add_`` on a preallocated output).
    """
    if options.method == "fft":
        return toolkit.fft_correlate(xp, x, k, options, geometry)
    if options.method == "native" and native_applies(xp, x, k):
        return native_forward(tuning, xp, x, k, options, geometry)
    return direct_forward(tuning, xp, x, k, options, geometry)


def numba_forward(tuning, x, k, options, geometry):
    """numba's direct kernel (``_numba.direct``, numpy's) on the memory of CPU tensors, or None.

    For contiguous float32/float64 CPU tensors of one dtype and a 2-D kernel (already cast and
    flipped by ``toolkit.prepare``), plain tensors (no functorch wrapper; inside the autograd
    Function their detached views), with numba installed and at least ``tuning.numba_min_outputs``
    outputs: ``x`` is read through a numpy view of its storage and the output, written by the
    kernel, is handed to torch without a copy. Threads: the shared pool, within torch's and
    numba's thread counts.
    """
    if _numba is None or not tuning.numba or x.device.type != "cpu" or k.device.type != "cpu" or k.ndim != 2:
        return None
    if x.dtype not in (torch.float32, torch.float64) or k.dtype != x.dtype or wrapped(x, k):
        return None
    if not x.is_contiguous() or x.is_neg() or k.is_neg() or not _numba.installed():
        return None
    threads = min(_numba.threads(), _threads.count(torch.get_num_threads()))
    y = _numba.direct(x.detach().numpy(), k.detach().numpy(), options, geometry, _pool, threads, tuning)
    return None if y is None else torch.from_numpy(y)


def numba_vjp(adapter, x, k, g, options, geometry, need_x: bool, need_k: bool):
    """``(gx, gk)`` by numba's fused backward (``_numba.direct_vjp``, numpy's) on the memory of CPU
    tensors, or None.

    For a direct correlation (stride 1, a "fill" extension or none reached) of contiguous
    float32/float64 CPU tensors of one dtype, both gradients wanted, plain tensors (no functorch
    wrapper) and no double backward recording (its gradients must themselves be differentiable):
    one pass over ``g`` writes the input gradient and sums the kernel gradient, where the core's
    VJP takes a full correlation and a kernel gradient, two passes.
    """
    tuning = adapter.tuning
    if _numba is None or not tuning.numba or not (need_x and need_k) or torch.is_grad_enabled():
        return None
    if k.ndim != 2 or options.stride != (1, 1) or not (geometry.inside or options.boundary == "fill"):
        return None
    if x.dtype not in (torch.float32, torch.float64) or not (k.dtype == g.dtype == x.dtype):
        return None
    if any(t.device.type != "cpu" or t.is_neg() or t.is_conj() for t in (x, k, g)) or wrapped(x, k) or wrapped(g, g):
        return None
    method = toolkit.concrete_method(adapter, options.method, "real floating", x.shape, k.shape, geometry)
    if method != "direct" or not x.is_contiguous() or not _numba.installed():
        return None
    threads = min(_numba.threads(), _threads.count(torch.get_num_threads()))
    arrays = (x.detach().numpy(), k.detach().numpy(), g.detach().numpy())
    both = _numba.direct_vjp(*arrays, options, geometry, _pool, threads, tuning)
    return None if both is None else (torch.from_numpy(both[0]), torch.from_numpy(both[1]))


def direct_forward(tuning, xp, x, k, options, geometry):
    """Shift-and-add into one preallocated output with in-place ``add_``.

    On the CPU the output is computed in bands of rows; large outputs split
    the bands between worker threads that each run torch single-threaded (the
    GIL is released inside every op). Extra memory: the output itself; no
    term is ever materialised. A zero fill is never built: each tap adds only
    onto the outputs whose window position lies inside ``x`` (see ``_inside``).
    """
    x, k = toolkit.prepare(xp, x, k, options)
    y = numba_forward(tuning, x, k, options, geometry)
    if y is not None:
        return y
    rows, cols = geometry.rows, geometry.cols
    if _zero_fill(options, geometry) and _finite_kernel(x, k):
        # Zero-filled "same"/"full": the input gradient's full correlation
        # comes here. Padding g first cost two concatenated copies (the input
        # gradient took about twice the forward); clipping each tap's window
        # to x costs nothing but a zeroed band where no tap covers it all.
        src_rows = [_inside(rows, a) for a in range(rows.taps)]
        src_cols = [_inside(cols, b) for b in range(cols.taps)]
        xe = x
    else:
        compacted = toolkit.compact(xp, x, geometry, options)
        if compacted is not None:
            # A dilation wider than the output: the taps' windows end to end, every window inside.
            xe, geometry = compacted
            rows, cols = geometry.rows, geometry.cols
        else:
            xe = _extend(xp, x, geometry, options)
        src_rows = [(0, rows.count, a * rows.dilation) for a in range(rows.taps)]
        src_cols = [(0, cols.count, b * cols.dilation) for b in range(cols.taps)]
    out = torch.empty(geometry.out_shape, dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    cpu = x.device.type == "cpu"
    if cpu and _hugepages is not None:
        _hugepages.advise(out.data_ptr(), out.numel() * out.element_size())
    if k.ndim == 2 and cpu:
        # Python scalars: add_(view, alpha=...) is one fused pass per tap.
        weights = k.tolist()
        taps = [(a, b, weights[a][b]) for a in range(rows.taps) for b in range(cols.taps)]
    else:
        taps = [(a, b, k[..., a : a + 1, b : b + 1]) for a in range(rows.taps) for b in range(cols.taps)]
    taps = [t for t in taps if src_rows[t[0]][0] < src_rows[t[0]][1] and src_cols[t[1]][0] < src_cols[t[1]][1]]
    row_elements = max(1, out.numel() // rows.count)
    pool = _pool() if cpu and out.numel() >= tuning.pooled_elements and not wrapped(x, k) else None
    if not cpu:
        band = rows.count
    elif pool is None:
        band = max(1, tuning.small_band // row_elements)
    else:
        band = max(1, tuning.band_elements // row_elements)
    starts = list(range(0, rows.count, band))
    full_cols = [b for b in range(cols.taps) if src_cols[b][:2] == (0, cols.count)]

    def work(chunk):
        with torch.no_grad():
            for r0 in chunk:
                r1 = min(rows.count, r0 + band)
                # The first term is written with mul(out=): it must cover the
                # whole band; with none that does, the band starts at zero.
                first = next(
                    (t for t in taps if t[1] in full_cols and src_rows[t[0]][0] <= r0 and r1 <= src_rows[t[0]][1]),
                    None,
                )
                if first is None:
                    out[..., r0:r1, :].zero_()
                for tap in ([first] if first is not None else []) + [t for t in taps if t is not first]:
                    a, b, kab = tap
                    i0, i1, row_at = src_rows[a]
                    j0, j1, col_at = src_cols[b]
                    lo, hi = max(r0, i0), min(r1, i1)
                    if lo >= hi:
                        continue
                    p = row_at + lo * rows.step
                    q = col_at + j0 * cols.step
                    src = xe[
                        ...,
                        p : p + (hi - lo - 1) * rows.step + 1 : rows.step,
                        q : q + (j1 - j0 - 1) * cols.step + 1 : cols.step,
                    ]
                    o = out[..., lo:hi, j0:j1]
                    if tap is first:
                        torch.mul(src, kab, out=o)
                    elif isinstance(kab, torch.Tensor):
                        o.addcmul_(src, kab)
                    else:
                        o.add_(src, alpha=kab)

    _share(pool, work, starts)
    return out


def _zero_fill(options, geometry) -> bool:
    """Whether the windows reach past ``x`` into a zero fill (which adds nothing)."""
    return not geometry.inside and options.boundary == "fill" and options.fillvalue == 0


def _finite_kernel(x, k) -> bool:
    """Whether every tap of ``k`` is known to be finite, so that a zero fill adds nothing.

    With an inf or NaN tap the fill's ``0 * tap`` is NaN: the result must
    be the IEEE one on the extended input, as on every other backend, so the
    zero fill is skipped only for finite kernels. The values are read on
    the CPU only, outside torch.func transforms, tracing and compilation
    (where reading them would cost a device sync, fail or break the graph):
    everywhere else the fill is built.
    """
    if x.device.type != "cpu" or wrapped(x, k) or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return bool(torch.isfinite(k).all())


def _inside(plan, tap: int) -> tuple[int, int, int]:
    """``(i0, i1, first)``: outputs ``i0 <= i < i1`` read tap ``tap`` inside the input,
    at positions ``first + i * step``."""
    first = plan.start + tap * plan.dilation
    i0 = min(plan.count, max(0, -(first // plan.step)))
    i1 = min(plan.count, max(i0, (plan.size - 1 - first) // plan.step + 1))
    return i0, i1, first


def has_few_outputs(tuning, geometry) -> bool:
    """Whether each output has ``tuning.few_outputs`` times more taps than there are outputs (a
    kernel gradient), where ``native_forward`` takes ``few_outputs`` on the CPU."""
    rows, cols = geometry.rows, geometry.cols
    return rows.count * cols.count * tuning.few_outputs <= rows.taps * cols.taps


def few_outputs(tuning, xp, x, k, options, geometry):
    """Correlation with a kernel far larger than the output: banded dot products.

    ``y[..., a, b] = sum over kernel rows of <window(a, b), k>``, the kernel
    rows split into bands that stay in cache while every output reads them;
    each worker thread sums its bands, single-threaded. Extra memory: one
    output per thread.
    """
    xe = _extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    # Large kernels: bands in cache, on the worker threads, with vecdot along
    # rows. Smaller ones: whole-window products and sums on the calling thread.
    pooled = k.numel() >= tuning.pooled_kernel and not wrapped(x, k)
    row_elements = max(1, (k.numel() // rows.taps) + xe[..., 0, :].numel())
    band = max(1, tuning.band_elements // row_elements) if pooled else rows.taps
    starts = list(range(0, rows.taps, band))
    span_c = (cols.taps - 1) * cols.dilation + 1
    vecdot = pooled and not x.dtype.is_complex

    def work(chunk):
        total = torch.zeros(geometry.out_shape, dtype=x.dtype)
        with torch.no_grad():
            for i0 in chunk:
                i1 = min(rows.taps, i0 + band)
                kb = k[..., i0:i1, :]
                for a in range(rows.count):
                    lo = a * rows.step + i0 * rows.dilation
                    src = xe[..., lo : lo + (i1 - i0 - 1) * rows.dilation + 1 : rows.dilation, :]
                    for b in range(cols.count):
                        c0 = b * cols.step
                        window = src[..., c0 : c0 + span_c : cols.dilation]
                        if vecdot:
                            dot = torch.linalg.vecdot(window, kb).sum(dim=-1)
                        else:
                            dot = (window * kb).sum(dim=(-2, -1))
                        total[..., a, b] += dot
        return total

    pool = _pool() if pooled and len(starts) > 1 else None
    return functools.reduce(torch.add, _share(pool, work, starts))


def _pool():
    """The adapters' shared worker pool (``_threads.pool``: fork-safe, one per process).

    Work submitted to it goes through ``_carry``, which runs torch
    single-threaded on each worker and under the caller's torch modes.
    """
    return _threads.pool()


def _share(pool, work, items):
    """``[work(items)]`` on the calling thread, or, with a ``pool``, two items or more and more than one
    thread allowed (``_threads.count``), the results of ``work`` on one chunk of the items per worker
    thread (through ``_carry``)."""
    threads = _threads.count(torch.get_num_threads())
    if pool is None or len(items) < 2 or threads == 1:
        return [work(items)]
    size = -(-len(items) // threads)
    return list(pool.map(_carry(work), [items[i : i + size] for i in range(0, len(items), size)]))


_worker = threading.local()


def _carry(work):
    """``work`` for the pool's threads, under the calling thread's torch state.

    Grad mode, inference mode and CPU autocast are thread-local in torch: a
    worker would otherwise run with the defaults (and, for one, refuse to
    write into an output made under ``torch.inference_mode()``). Each
    worker also runs torch ops single-threaded (OpenMP's thread count is per
    thread): the pool is the parallelism.
    """
    inference = torch.is_inference_mode_enabled()
    grad = torch.is_grad_enabled()
    autocast = torch.is_autocast_enabled("cpu")
    autocast_dtype = torch.get_autocast_dtype("cpu")

    def run(*args):
        if not getattr(_worker, "single_threaded", False):
            torch.set_num_threads(1)
            _worker.single_threaded = True
        with (
            torch.inference_mode(inference),
            torch.set_grad_enabled(grad),
            torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast),
        ):
            return work(*args)

    return run


def wrapped(x, k) -> bool:
    """torch.func (vmap/grad) tensors and forward-AD duals stay on the calling thread, where their
    transforms live, and out of the fast paths that no derivative passes through."""
    functorch = torch._C._functorch.is_functorch_wrapped_tensor
    return functorch(x) or functorch(k) or _dual(x, k)


def _dual(x, k) -> bool:
    """Whether ``x`` or ``k`` carries a forward-mode tangent (``torch.autograd.forward_ad``)."""
    if _forward_ad._current_level < 0:  # no dual level open: no tangents
        return False
    return _forward_ad.unpack_dual(x).tangent is not None or _forward_ad.unpack_dual(k).tangent is not None


def kernel_gradient_applies(tuning, xc, k, g, geometry, method) -> bool:
    """Whether ``kernel_gradient`` applies: the direct method on the CPU, float or complex tensors, a unit
    column stride, planes of ``TorchTuning.gradient_min_plane`` outputs, no double backward or torch.func."""
    rows, cols = geometry.rows, geometry.cols
    return not (
        method != "direct"
        or xc.device.type != "cpu"
        or xc.dtype not in (torch.float32, torch.float64, torch.complex64, torch.complex128)
        or cols.step != 1
        or rows.count * cols.count < tuning.gradient_min_plane
        # Double backward needs a differentiable graph: leave it to the core.
        or (torch.is_grad_enabled() and (xc.requires_grad or k.requires_grad or g.requires_grad))
        or wrapped(xc, g)
        or wrapped(k, k)
    )


def kernel_gradient(tuning, xp, xc, k, g, options, geometry):
    """The kernel gradient where ``kernel_gradient_applies``: all ``h*w`` taps as ``w`` bmm calls per band.

    ``gk[a, b] = sum_ij g[i, j] * xe[i*s + a*d, j + b*d']``. For one column
    shift ``b`` and one output row ``i`` the ``h`` taps are a (1 x C) @
    (C x h) product whose right factor is a strided *view* of x (column
    stride 1, row stride ``W*d``: a BLAS layout, nothing copied); ``bmm``
    batches it over the rows. So the whole gradient is ``w`` bmm calls per
    band, against ``h*w`` full passes that each wrote a product temporary.

    Large gradients split the bands between the single-threaded pool
    workers: on the calling thread bmm's OpenMP split was at best a little
    faster, and on a loaded machine many times slower, waiting for
    descheduled threads.
    """
    rows, cols = geometry.rows, geometry.cols
    xe = _extend(xp, xc, geometry, options)
    if xe.stride(-1) != 1:
        xe = xe.contiguous()
    if g.stride(-1) != 1:
        g = g.contiguous()
    batch = geometry.batch
    planes = [()]
    for n in batch:
        planes = [(*p, i) for p in planes for i in range(n)]
    xe = xe.expand(*batch, *xe.shape[-2:])
    g = g.expand(geometry.out_shape)
    h, w, C = rows.taps, cols.taps, cols.count
    pool = _pool() if g.numel() >= tuning.pooled_elements else None
    workers = 1 if pool is None else _threads.count(torch.get_num_threads())
    # Row bands of at most tuning.gradient_band elements, and at least one per worker.
    per_plane = max(-(-rows.count * C // tuning.gradient_band), -(-workers // len(planes)))
    band = -(-rows.count // min(rows.count, per_plane))
    items = [(p, r0, min(rows.count, r0 + band)) for p in range(len(planes)) for r0 in range(0, rows.count, band)]

    # One kernel for every plane: each worker accumulates all its planes'
    # row products in one buffer (baddbmm_), summed once at the end; one
    # kernel per plane: a buffer per plane.
    shared = k.ndim == 2

    def work(chunk):
        acc = {}
        with torch.no_grad():
            for p, r0, r1 in chunk:
                xq, gq = xe[planes[p]], g[planes[p]]
                rs, cs = xq.stride(-2), xq.stride(-1)
                gb = gq[r0:r1].unsqueeze(-2)  # (n, 1, C)
                key = (0 if shared else p, r1 - r0)
                buffer = acc.get(key)
                if buffer is None:
                    buffer = acc[key] = torch.zeros((w, r1 - r0, 1, h), dtype=xc.dtype)
                for b in range(w):
                    view = xq.as_strided(
                        (r1 - r0, C, h),
                        (rs * rows.step, cs, rs * rows.dilation),
                        xq.storage_offset() + r0 * rows.step * rs + b * cols.dilation * cs,
                    )
                    buffer[b].baddbmm_(gb, view)
        partial = torch.zeros((len(planes), w, h), dtype=xc.dtype)
        for (p, _), buffer in acc.items():
            partial[p] += buffer.sum(dim=(1, 2))
        return partial

    gk = functools.reduce(torch.add, _share(pool, work, items))
    return toolkit.unbroadcast(xp, gk.transpose(-2, -1).reshape(*batch, h, w), tuple(k.shape))


def native_applies(xp, x, k) -> bool:
    """Whether ``native_forward`` takes the operands: a floating or complex result dtype wider than 16 bits."""
    dtype = result_dtype(xp, x.dtype, k.dtype)
    return (dtype.is_floating_point or dtype.is_complex) and dtype not in (torch.float16, torch.bfloat16)


def native_forward(tuning, xp, x, k, options, geometry):
    """``torch.nn.functional.conv2d`` on the extended input (valid, strided, dilated).

    Except where the kernel dwarfs the output (a kernel gradient: h*w outputs
    of H*W taps each), for which F.conv2d is slow: there ``few_outputs``
    takes the dot products in cache-sized bands on the worker threads.
    Where ``native_applies``.
    """
    x, k = toolkit.prepare(xp, x, k, options)
    if x.device.type == "cpu" and has_few_outputs(tuning, geometry):
        return few_outputs(tuning, xp, x, k, options, geometry)
    compacted = toolkit.compact(xp, x, geometry, options)  # a dilation wider than the output
    xe, geometry = compacted if compacted is not None else (_extend(xp, x, geometry, options), geometry)
    return conv_planes(xe, k, geometry)
