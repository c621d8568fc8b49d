"""PyTorch adapter: autograd integration and fast forward kernels.

Imported lazily by the adapter registry (``xcorr._adapter``) the first time a torch tensor reaches
xcorr; ``import xcorr`` never imports torch.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

import torch
import torch.autograd.forward_ad as _forward_ad

from .. import _generic, _layer, _vjp, toolkit
from .._adapter import Adapter, Costs, Tuning
from .._compat import array_namespace
from .._correlate import conv2d, corr2d
from .._jvp import tangent_options
from .._multi import corr2d_multi
from .._options import plan, result_dtype
from .._transpose import conv_transpose2d, corr2d_transpose
from . import _threads

try:
    from . import _hugepages
except ImportError:  # the optional huge-page advice removed
    _hugepages = None


def correlate(xp, x, k, options, geometry):
    """Validated correlation of torch tensors (``TorchAdapter.correlate``)."""
    _refuse_torchscript()
    if tracing(x, k):
        return traceable_correlate(xp, x, k, options, geometry)
    if x.dtype in _UNSIGNED_WIDE and k.dtype == x.dtype:
        return _unsigned(xp, x, k, options, geometry)
    if needs_autodiff(x, k):
        return differentiable_correlate(xp, x, k, options, geometry)
    return forward(xp, x, k, options, geometry)


TORCHSCRIPT = (
    "xcorr does not support TorchScript (torch.jit.trace, torch.jit.script, or torch.onnx.export with "
    "dynamo=False): its calls choose their path from shapes, options and (on the CPU) the kernel's values "
    "in Python, which a trace would freeze into wrong results for other inputs. Use torch.compile, "
    "torch.export.export or torch.onnx.export(..., dynamo=True), or call the model eagerly"
)


def _refuse_torchscript() -> None:
    """A clear error under the TorchScript tracer, which would record a silently wrong graph."""
    if torch.jit.is_tracing():
        raise RuntimeError(TORCHSCRIPT)


# torch has uint16/32/64 tensors but few kernels for them (no add, no mul).
_UNSIGNED_WIDE = frozenset({torch.uint16, torch.uint32, torch.uint64})


def _unsigned(xp, x, k, options, geometry):
    """uint16/32/64 correlations in int64, as numpy computes them: modulo ``2**bits``.

    Sums and products of integers modulo ``2**64`` (int64's wrap-around,
    two's complement) reduced modulo ``2**bits`` are those of the unsigned
    dtype; uint64 is reinterpreted bit for bit (``view``), the narrower ones
    widened and narrowed back (a modular cast). The dtypes of ``x`` and
    ``k`` are equal here: torch promotes them with no other dtype.
    """
    from dataclasses import replace

    dtype = x.dtype
    fill = options.fillvalue
    if dtype == torch.uint64:
        x, k = x.view(torch.int64), k.view(torch.int64)
        fill = int(fill) - (1 << 64) if int(fill) >= 1 << 63 else int(fill)  # the same bits as int64
    else:
        x, k = x.to(torch.int64), k.to(torch.int64)
    y = forward(xp, x, k, replace(options, fillvalue=fill), geometry)
    return y.view(dtype) if dtype == torch.uint64 else y.to(dtype)


# --- autodiff ------------------------------------------------------------


def differentiable_correlate(xp, x, k, options, geometry):
    """Correlation that records a backward pass for torch autograd.

    Floating and complex operands go through ``_Correlate``, whose backward
    is the core VJP (``xcorr._vjp``); it is itself built from differentiable
    correlations, so double backward (``gradgradcheck``) works too.
    """
    dtype = result_dtype(xp, x.dtype, k.dtype)
    if not dtype.is_floating_point and not dtype.is_complex:
        # No gradients for integers; under vmap only out-of-place code works.
        return _generic.correlate(xp, x, k, options, geometry)
    # Integer operands cannot carry gradients: cast them before the Function.
    return _Correlate.apply(x.to(dtype), k.to(dtype), options, geometry)


def tracing(*tensors) -> bool:
    """Whether ``torch.compile`` or ``torch.export`` is tracing this call.

    Tracers carry no values (no ``tolist``), no storage (no pointers for
    huge pages) and must not leave the calling thread, so traced calls take
    ``traceable_correlate``: plain differentiable torch ops, whose gradients
    torch derives itself.
    """
    if torch.compiler.is_compiling():
        return True
    return any(type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter for t in tensors)


def traceable_correlate(xp, x, k, options, geometry):
    """The correlation as ``F.conv2d`` (floating and complex dtypes) or a shift-and-add of
    slices (integers): ops that every torch tracer and autograd know."""
    x, k = _generic.prepare(xp, x, k, options)
    if not (x.dtype.is_floating_point or x.dtype.is_complex) or x.dtype in (torch.float16, torch.bfloat16):
        return _generic.correlate(xp, x, k, replace(options, convolve=False), geometry)
    rows, cols = geometry.rows, geometry.cols
    xe, padding = _library_extension(xp, x, options, geometry)
    conv = torch.nn.functional.conv2d
    stride, dilation = (rows.step, cols.step), (rows.dilation, cols.dilation)
    H, W = xe.shape[-2:]
    h, w = k.shape[-2:]
    if k.ndim == 2:
        y = conv(xe.reshape(-1, 1, H, W), k.reshape(1, 1, h, w), stride=stride, padding=padding, dilation=dilation)
        y = y.reshape(*xe.shape[:-2], *y.shape[-2:])
    else:
        batch = geometry.batch
        planes = math.prod(batch)
        xb = xe.expand(*batch, H, W).reshape(1, planes, H, W)
        kb = k.expand(*batch, h, w).reshape(planes, 1, h, w)
        y = conv(xb, kb, stride=stride, padding=padding, dilation=dilation, groups=planes)
        y = y.reshape(*batch, *y.shape[-2:])
    y = _crop(y, rows.count, cols.count)
    if tuple(y.shape) != geometry.out_shape:
        y = y.expand(geometry.out_shape)
    return y


def needs_autodiff(x, k) -> bool:
    """Whether a call must go through ``_Correlate``: autograd, forward AD or a torch.func transform."""
    if torch.is_grad_enabled() and (x.requires_grad or k.requires_grad):
        return True
    return _wrapped(x, k)


def _dual(x, k) -> bool:
    """Whether ``x`` or ``k`` carries a forward-mode tangent (``torch.autograd.forward_ad``)."""
    if _forward_ad._current_level < 0:  # no dual level open: no tangents
        return False
    return _forward_ad.unpack_dual(x).tangent is not None or _forward_ad.unpack_dual(k).tangent is not None


class _Correlate(torch.autograd.Function):
    """corr2d/conv2d as one autograd node (``setup_context`` form: torch.func ready)."""

    @staticmethod
    def forward(x, k, options, geometry):
        y = forward(array_namespace(x, k), x, k, options, geometry)
        # Under forward AD (a dual level is open), a view (a crop of the FFT's
        # or F.conv2d's output) would need its tangent laid out as a view of
        # the same base: the output is copied out of it there, and only there.
        return y.clone() if _forward_ad._current_level >= 0 and y._is_view() else y

    @staticmethod
    def vmap(info, in_dims, x, k, options, geometry):
        # corr2d batches natively: move the vmapped dimension in front of the
        # batch dimensions and make one batched call.
        x_dim, k_dim = in_dims[0], in_dims[1]
        batch = len(geometry.batch)
        x = _leading(x, x_dim, batch)
        k = _leading(k, k_dim, batch)
        return _apply(x, k, options), 0

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, k, options, geometry = inputs
        ctx.save_for_backward(x, k)
        ctx.save_for_forward(x, k)
        ctx.options = options
        ctx.geometry = geometry

    @staticmethod
    def jvp(ctx, dx, dk, _options, _geometry):
        # Bilinear: the tangent is corr(dx, k) + corr(x, dk), each a
        # differentiable correlation (so forward-over-reverse works too); a
        # non-zero fill value is a constant, so dx goes through the linear part.
        x, k = ctx.saved_tensors
        options, geometry = ctx.options, ctx.geometry
        t = None
        if dx is not None:
            t = _Correlate.apply(dx, k, tangent_options(options), geometry)
        if dk is not None:
            term = _Correlate.apply(x, dk, options, geometry)
            t = term if t is None else t + term
        return t

    @staticmethod
    def backward(ctx, g):
        x, k = ctx.saved_tensors
        xp = array_namespace(x, k, g)
        # torch's convention for complex numbers is the conjugate of the
        # transpose: conj(J^T conj(g)). For real tensors the conj calls are no-ops.
        conj = g.is_complex()
        if conj:
            g = g.conj()
        need_x, need_k = ctx.needs_input_grad[:2]
        gx, gk = _vjp.vjp(xp, x, k, g, ctx.options, ctx.geometry, need_x=need_x, need_k=need_k)
        if conj:
            gx = None if gx is None else gx.conj()
            gk = None if gk is None else gk.conj()
        return gx, gk, None, None


def fft_vjp(xp, x, k, g, options, geometry, need_x: bool, need_k: bool):
    """``_fft.vjp`` (both gradients from one spectrum of ``g``) with torch.fft, where ``method="fft"``.

    Real float32/float64 tensors of one dtype, stride 1 and a "fill"
    extension (or none reached); its products go in place, so not under a
    double backward (grad mode on) nor torch.func transforms or forward-AD
    duals. NotImplemented otherwise (the core VJP).
    """
    if (
        options.method != "fft"
        or x.dtype not in (torch.float32, torch.float64)
        or not (k.dtype == g.dtype == x.dtype)
        or options.stride != (1, 1)
        or not (geometry.inside or options.boundary == "fill")
        or torch.is_grad_enabled()
        or _wrapped(x, k)
        or _wrapped(g, g)
    ):
        return NotImplemented
    return _fft.vjp(xp, x, k, g, options, geometry, need_x, need_k)


def _leading(a, dim, batch: int):
    """Move vmapped ``dim`` of ``a`` to the front, padding its batch dims to ``batch``."""
    if dim is None:
        return a
    a = a.movedim(dim, 0)
    missing = batch - (a.ndim - 3)
    return a.reshape(a.shape[0], *(1,) * missing, *a.shape[1:])


def _apply(x, k, options):
    """``_Correlate`` of (possibly vmapped) tensors, with their geometry recomputed."""
    return _Correlate.apply(x, k, options, plan(x.shape, k.shape, options))


# --- fast forward kernels --------------------------------------------------

import functools  # noqa: E402  (this section's imports; the header belongs to autodiff)

from .. import _fft  # noqa: E402


def _extend(xp, x, geometry, options):
    """``_fft.extend``, with "reflect", "edge" and "wrap" as one ``F.pad`` for float32/float64 where torch
    has the mode: one tensor written once, where the generic extension concatenates once per axis."""
    rows, cols = geometry.rows, geometry.cols
    if not geometry.inside and options.boundary != "fill" and x.dtype in (torch.float32, torch.float64):
        top, left = max(0, -rows.lo), max(0, -cols.lo)
        pads = (left, max(0, cols.hi - cols.size + 1), top, max(0, rows.hi - rows.size + 1))
        xe = _pad_mode(x, options.boundary, geometry, pads)
        if xe is not None:
            return xe[..., rows.lo + top : rows.hi + top + 1, cols.lo + left : cols.hi + left + 1]
    return _fft.extend(xp, x, geometry, options)


def forward(xp, x, k, options, geometry):
    """Fastest forward computation for torch tensors (no autograd recorded).

    ``options.method`` is already resolved by ``xcorr._methods``: "fft" goes
    through ``torch.fft`` real transforms, "native" through
    ``torch.nn.functional.conv2d``, "direct" through a row-tiled in-place
    shift-and-add (``add_`` on a preallocated output).
    """
    if options.method == "fft":
        return _fft.correlate(xp, x, k, options, geometry)
    if options.method == "native":
        result = native_forward(xp, x, k, options, geometry)
        if result is not NotImplemented:
            return result
    return direct_forward(xp, x, k, options, geometry)



def direct_forward(xp, x, k, options, geometry):
    """Shift-and-add into one preallocated output with in-place ``add_``.

    On the CPU the output is computed in bands of rows; large outputs split
    the bands between worker threads that each run torch single-threaded (the
    GIL is released inside every op). Extra memory: the output itself; no
    term is ever materialised. A zero fill is never built: each tap adds only
    onto the outputs whose window position lies inside ``x`` (see ``_inside``).
    """
    x, k = _generic.prepare(xp, x, k, options)
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
        compacted = _generic.compact(xp, x, geometry, options)
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
    pool = _pool() if cpu and out.numel() >= ADAPTER.tuning.pooled_elements and not _wrapped(x, k) else None
    if not cpu:
        band = rows.count
    elif pool is None:
        band = max(1, ADAPTER.tuning.small_band // row_elements)
    else:
        band = max(1, ADAPTER.tuning.band_elements // row_elements)
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

    if pool is None or len(starts) < 2:
        work(starts)
    else:
        workers = _threads.count()
        size = -(-len(starts) // workers)
        list(pool.map(_carry(work), [starts[i : i + size] for i in range(0, len(starts), size)]))
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
    if x.device.type != "cpu" or _wrapped(x, k) or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return bool(torch.isfinite(k).all())


def _inside(plan, tap: int) -> tuple[int, int, int]:
    """``(i0, i1, first)``: outputs ``i0 <= i < i1`` read tap ``tap`` inside the input,
    at positions ``first + i * step``."""
    first = plan.start + tap * plan.dilation
    i0 = min(plan.count, max(0, -(first // plan.step)))
    i1 = min(plan.count, max(i0, (plan.size - 1 - first) // plan.step + 1))
    return i0, i1, first



def few_outputs(xp, x, k, options, geometry):
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
    pooled = k.numel() >= ADAPTER.tuning.pooled_kernel and not _wrapped(x, k)
    row_elements = max(1, (k.numel() // rows.taps) + xe[..., 0, :].numel())
    band = max(1, ADAPTER.tuning.band_elements // row_elements) if pooled else rows.taps
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
    if pool is None:
        return work(starts)
    workers = _threads.count()
    size = -(-len(starts) // workers)
    partials = list(pool.map(_carry(work), [starts[i : i + size] for i in range(0, len(starts), size)]))
    return functools.reduce(torch.add, partials)


def _pool():
    """The adapters' shared worker pool (``_threads.pool``: fork-safe, one per process).

    Work submitted to it goes through ``_carry``, which runs torch
    single-threaded on each worker and under the caller's torch modes.
    """
    return _threads.pool()


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


def _wrapped(x, k) -> bool:
    """torch.func (vmap/grad) tensors and forward-AD duals stay on the calling thread, where their
    transforms live, and out of the fast paths that no derivative passes through."""
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    return wrapped(x) or wrapped(k) or _dual(x, k)



def kernel_gradient(xp, xc, k, g, options, geometry, method):
    """``xcorr._vjp`` hook: all ``h*w`` kernel-gradient taps as ``w`` bmm calls per band.

    ``gk[a, b] = sum_ij g[i, j] * xe[i*s + a*d, j + b*d']``. For one column
    shift ``b`` and one output row ``i`` the ``h`` taps are a (1 x C) @
    (C x h) product whose right factor is a strided *view* of x (column
    stride 1, row stride ``W*d``: a BLAS layout, nothing copied); ``bmm``
    batches it over the rows. So the whole gradient is ``w`` bmm calls per
    band, against ``h*w`` full passes that each wrote a product temporary.

    Large gradients split the bands between the single-threaded pool
    workers: on the calling thread bmm's OpenMP split was at best a little
    faster, and on a loaded machine many times slower, waiting for
    descheduled threads. Direct method, CPU,
    float/complex, unit column stride; anything else returns NotImplemented
    (the adapter's native kernel gradient).
    """
    rows, cols = geometry.rows, geometry.cols
    if (
        method != "direct"
        or xc.device.type != "cpu"
        or xc.dtype not in (torch.float32, torch.float64, torch.complex64, torch.complex128)
        or cols.step != 1
        or rows.count * cols.count < ADAPTER.tuning.gradient_min_plane
        # Double backward needs a differentiable graph: leave it to the core.
        or (torch.is_grad_enabled() and (xc.requires_grad or k.requires_grad or g.requires_grad))
        or _wrapped(xc, g)
        or _wrapped(k, k)
    ):
        return NotImplemented
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
    pool = _pool() if g.numel() >= ADAPTER.tuning.pooled_elements else None
    workers = 1 if pool is None else _threads.count()
    # Row bands of at most ADAPTER.tuning.gradient_band elements, and at least one per worker.
    per_plane = max(-(-rows.count * C // ADAPTER.tuning.gradient_band), -(-workers // len(planes)))
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

    if pool is None or len(items) < 2:
        gk = work(items)
    else:
        size = -(-len(items) // workers)
        gk = functools.reduce(torch.add, pool.map(_carry(work), [items[i : i + size] for i in range(0, len(items), size)]))
    return toolkit.unbroadcast(xp, gk.transpose(-2, -1).reshape(*batch, h, w), tuple(k.shape))



def native_forward(xp, x, k, options, geometry):
    """``torch.nn.functional.conv2d`` on the extended input (valid, strided, dilated).

    Except where the kernel dwarfs the output (a kernel gradient: h*w outputs
    of H*W taps each), for which F.conv2d is slow: there ``few_outputs``
    takes the dot products in cache-sized
    bands on the worker threads.
    """
    x, k = _generic.prepare(xp, x, k, options)
    if not (x.dtype.is_floating_point or x.dtype.is_complex) or x.dtype in (torch.float16, torch.bfloat16):
        return NotImplemented
    rows, cols = geometry.rows, geometry.cols
    if x.device.type == "cpu" and rows.count * cols.count * ADAPTER.tuning.few_outputs <= rows.taps * cols.taps:
        return few_outputs(xp, x, k, options, geometry)
    compacted = _generic.compact(xp, x, geometry, options)  # a dilation wider than the output
    xe, geometry = compacted if compacted is not None else (_extend(xp, x, geometry, options), geometry)
    rows, cols = geometry.rows, geometry.cols
    conv = torch.nn.functional.conv2d
    stride, dilation = (rows.step, cols.step), (rows.dilation, cols.dilation)
    H, W = xe.shape[-2:]
    h, w = k.shape[-2:]
    if k.ndim == 2:
        y = conv(xe.reshape(-1, 1, H, W), k.reshape(1, 1, h, w), stride=stride, dilation=dilation)
        y = y.reshape(*xe.shape[:-2], *y.shape[-2:])
    else:
        # One kernel per plane: a grouped convolution over the broadcast batch.
        batch = geometry.batch
        planes = 1
        for n in batch:
            planes *= n
        xb = xe.expand(*batch, H, W).reshape(1, planes, H, W)
        kb = k.expand(*batch, h, w).reshape(planes, 1, h, w)
        y = conv(xb, kb, stride=stride, dilation=dilation, groups=planes)
        y = y.reshape(*batch, *y.shape[-2:])
    y = y[..., : rows.count, : cols.count]
    if tuple(y.shape) != geometry.out_shape:
        y = y.expand(geometry.out_shape)
    return y


# --- layers and multi-channel correlation (issue 3) -------------------------


def correlate_multi(xp, x, w, options, geometry, groups, bias=None):
    """``corr2d_multi``: ``F.conv2d`` (a GEMM), the boundary extension handed to torch.

    A zero fill no wider after ``x`` than before it is ``F.conv2d``'s own
    ``padding``; other fills and a wrap within one period are ``F.pad``;
    only "symm" (which torch's pad modes do not have) and wider wraps build
    the extension from slices. A ``bias`` goes into ``F.conv2d``, which adds
    it as the GEMM's epilogue (and the graph is ``nn.Conv2d``'s).
    """
    _refuse_torchscript()
    dtype = x.dtype if x.dtype == w.dtype else result_dtype(xp, x.dtype, w.dtype)
    if not dtype.is_floating_point or dtype in (torch.float16, torch.bfloat16):
        return NotImplemented
    if x.dtype != dtype or w.dtype != dtype:
        x, w = x.to(dtype), w.to(dtype)
    if bias is not None and bias.dtype != dtype:
        bias = bias.to(dtype)
    rows, cols = geometry.rows, geometry.cols
    xe, padding = _library_extension(xp, x, options, geometry)
    y = torch.nn.functional.conv2d(
        xe, w, bias, stride=options.stride, padding=padding, dilation=options.dilation, groups=groups
    )
    return _crop(y, rows.count, cols.count)


def correlate_multi_transpose(xp, x, w, plan, bias=None):
    """``conv_transpose2d``: ``F.conv_transpose2d``, with torch's padding where it is symmetric.

    A channels-last ``x`` goes in as a permuted view (``channels_last``
    memory format), which torch computes on without a copy; its result keeps
    that format, so the permutation back is a contiguous ``(N, H, W, C)``.
    Asymmetric padding crops the uncropped result (slices). A ``bias`` goes
    into ``F.conv_transpose2d`` where the padding is torch's (else NotImplemented).
    """
    from .. import _layout, _transpose

    _refuse_torchscript()
    dtype = x.dtype if x.dtype == w.dtype else result_dtype(xp, x.dtype, w.dtype)
    if not dtype.is_floating_point or dtype in (torch.float16, torch.bfloat16):
        return NotImplemented
    if x.dtype != dtype or w.dtype != dtype:
        x, w = x.to(dtype), w.to(dtype)
    padding = plan.torch_padding
    if bias is not None:
        if padding is None:
            return NotImplemented
        if bias.dtype != dtype:
            bias = bias.to(dtype)
    if plan.channels_last:
        x = _layout.to_first(xp, x)
    options = plan.options
    if padding is not None:
        y = torch.nn.functional.conv_transpose2d(
            x, w, bias, stride=options.stride, padding=padding, output_padding=plan.output_padding,
            groups=plan.groups, dilation=options.dilation,
        )
    else:
        full = torch.nn.functional.conv_transpose2d(
            x, w, stride=options.stride, groups=plan.groups, dilation=options.dilation
        )
        y = _transpose.crop(xp, full, plan)
    return _layout.to_last(xp, y) if plan.channels_last else y


def _crop(y, rows: int, cols: int):
    """The first ``rows`` x ``cols`` outputs: no slice (an op and an autograd node) where that is all of ``y``."""
    return y if y.shape[-2:] == (rows, cols) else y[..., :rows, :cols]


def _library_extension(xp, x, options, geometry):
    """``(xe, padding)``: ``F.conv2d(xe, ..., padding=padding)`` reads what the windows read.

    The windows start at row ``rows.lo`` and column ``cols.lo`` of ``x``
    (at most 0); what lies past the last window is only read by outputs
    that are cropped, so a zero fill as wide after ``x`` as before it is
    enough at both ends. Other fills, "wrap" within one period, "reflect"
    narrower than ``x`` (torch's own limit) and "edge" are ``F.pad``'s
    "constant", "circular", "reflect" and "replicate" modes; "symm" (which
    torch's pad modes do not have) and wider extensions are built from slices.
    """
    rows, cols = geometry.rows, geometry.cols
    top, left = -rows.lo, -cols.lo
    bottom, right = max(0, rows.hi - rows.size + 1), max(0, cols.hi - cols.size + 1)
    if not (top or bottom or left or right):
        return x, 0
    pads = (left, right, top, bottom)
    if options.boundary == "fill":
        if options.fillvalue == 0 and bottom <= top and right <= left:
            return x, (top, left)
        return torch.nn.functional.pad(x, pads, value=options.fillvalue), 0
    xe = _pad_mode(x, options.boundary, geometry, pads)
    return (toolkit.extend(xp, x, geometry, options) if xe is None else xe), 0


def _pad_mode(x, boundary, geometry, pads):
    """``F.pad(x, pads)`` in the mode of ``boundary``, or None where torch has no such pad.

    "wrap" is "circular" up to the size of ``x``, "reflect" is "reflect"
    narrower than ``x`` (torch's limits), "edge" is "replicate"; "symm" has
    no torch mode. The non-circular modes are taken for floating dtypes only.
    """
    rows, cols = geometry.rows, geometry.cols
    left, right, top, bottom = pads
    widest_rows, widest_cols = max(top, bottom), max(left, right)
    mode = {
        "wrap": "circular" if widest_rows <= rows.size and widest_cols <= cols.size else None,
        "reflect": "reflect" if widest_rows < rows.size and widest_cols < cols.size else None,
        "edge": "replicate",
    }.get(boundary)
    if mode is None or not (mode == "circular" or x.dtype.is_floating_point):
        return None
    planes = x.reshape(-1, 1, *x.shape[-2:])  # F.pad's non-constant modes take (N, C, H, W)
    xe = torch.nn.functional.pad(planes, pads, mode=mode)
    return xe.reshape(*x.shape[:-2], *xe.shape[-2:])


class Conv2D(_layer.Conv2D, torch.nn.Module):
    """``xcorr.Conv2D`` as a ``torch.nn.Module``: ``weight`` and ``bias`` are parameters.

    Same arguments as ``xcorr.Conv2D`` (``backend`` may be omitted or
    "torch"); works with ``torch.optim``, ``state_dict`` and ``.to(...)``.
    """

    def __init__(self, kernel_size, /, **kwargs):
        torch.nn.Module.__init__(self)
        spec, params = self._configure("torch", kernel_size, kwargs)
        self.spec = spec
        self.weight = torch.nn.Parameter(params["weight"])
        if params["bias"] is None:
            self.register_parameter("bias", None)
        else:
            self.bias = torch.nn.Parameter(params["bias"])

    def forward(self, x):
        _refuse_torchscript()
        # Through the public functions, which torch.compile and torch.export
        # take whole into their graphs (see the end of this module).
        spec = self.spec
        x, weight, bias = self._operands(x)
        if spec.channels:
            return corr2d_multi(x, weight, bias=bias, **spec.call_options)
        y = corr2d(x, weight, **spec.call_options)
        return y if bias is None else y + bias

    def _operands(self, x):
        """``(x, weight, bias)``, cast as ``nn.Conv2d``'s are under ``torch.autocast``: a
        convolution runs in the autocast dtype."""
        weight, bias = self.weight, self.bias
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = _autocast(x, dtype), _autocast(weight, dtype)
            bias = None if bias is None else _autocast(bias, dtype)
        return x, weight, bias

    def __prepare_scriptable__(self):
        # torch.jit.script calls this before compiling forward's source.
        raise RuntimeError(TORCHSCRIPT)

    def extra_repr(self) -> str:
        return self.spec.describe(dtype=str(self.weight.dtype).removeprefix("torch."))


def _autocast(t, dtype):
    """``t`` as autocast casts an argument of a lower-precision op: floating tensors but float64."""
    return t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 else t


class Conv2DTranspose(_layer.Conv2DTranspose, Conv2D):
    """``xcorr.Conv2DTranspose`` as a ``torch.nn.Module`` (``F.conv_transpose2d``).

    Same arguments as ``xcorr.Conv2DTranspose``; ``weight`` has
    ``nn.ConvTranspose2d``'s layout, so its ``state_dict`` loads directly.
    """

    def forward(self, x):
        _refuse_torchscript()
        spec = self.spec
        x, weight, bias = self._operands(x)
        return conv_transpose2d(
            x, weight, bias=bias, stride=spec.options.stride, padding=spec.padding,
            output_padding=spec.output_padding, dilation=spec.options.dilation, groups=spec.groups,
            data_format=spec.data_format,
        )


# --- the adapter -------------------------------------------------------------


def _small_direct(xp, dtype, options, geometry):
    """``direct_forward`` of one small signature (one band, every window inside ``x``), its tap
    windows placed once; tensors that autograd or a torch.func transform must see, or that are
    not on the CPU, go through ``correlate``."""
    rows, cols = geometry.rows, geometry.cols
    h, w = rows.taps, cols.taps
    inside = (..., slice(rows.lo, rows.hi + 1), slice(cols.lo, cols.hi + 1))
    taps = [
        ((h - 1 - a, w - 1 - b) if options.convolve else (a, b), (..., _generic.window(rows, a), _generic.window(cols, b)))
        for a in range(h)
        for b in range(w)
    ]
    (first, first_window), rest = taps[0], taps[1:]

    def run(x, k):
        if tracing(x, k) or torch.jit.is_tracing() or needs_autodiff(x, k) or x.device.type != "cpu":
            return correlate(xp, x, k, options, geometry)
        xe = x.to(dtype)[inside]
        weights = k.to(dtype).tolist()
        out = torch.mul(xe[first_window], weights[first[0]][first[1]])
        for (a, b), window in rest:
            out.add_(xe[window], alpha=weights[a][b])
        return out

    return run


def _fit(layer, x, y, lr, steps, loss, record):
    from .._fit import loss_and_gradient

    params = [p for p in (layer.weight, layer.bias) if p is not None]
    xp = array_namespace(x)
    for _ in range(steps):
        for p in params:
            p.grad = None
        value, _ = loss_and_gradient(xp, layer(x) - y, loss)
        value.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=lr)
        record(value.item())
    for p in params:
        p.grad = None
    return layer


def _gradient(fn, x, index):
    from .._empirical import check_index, full_index

    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x)
        full = full_index(index, y.ndim)
        check_index(tuple(y.shape), full)
        (gradient,) = torch.autograd.grad(y[full], x, allow_unused=True)
    return torch.zeros_like(x) if gradient is None else gradient


@dataclass(frozen=True)
class TorchTuning(Tuning):
    """The torch adapter's cost model and thresholds (``python -m benchmarks``, float32, 2 cores)."""

    costs: Costs = Costs(call=100e3, per_output=0.8, per_tap=0.14, fft_call=500e3, fft_point=0.35)
    # Output elements per band of rows in the CPU direct path: the band and the
    # input rows it reads stay in L2 while every kernel tap passes over them.
    band_elements: int = 1 << 18
    # Below pooled_elements output elements one band is at most small_band
    # elements, so that torch runs each op on the calling thread: torch's
    # OpenMP split of medium-sized ops costs more than it gains, and on a
    # loaded machine its barrier waits for descheduled threads.
    pooled_elements: int = 1 << 18
    small_band: int = 1 << 15
    # "Few outputs": each output has at least this many times more taps than
    # there are outputs (a kernel gradient): banded dot products, not F.conv2d.
    few_outputs: int = 64
    # Kernels of at least this many elements take the banded, threaded form.
    pooled_kernel: int = 1 << 21
    # Elements of g per bmm call in kernel_gradient: bmm's cost is per call
    # and per batch row, so bands are large.
    gradient_band: int = 1 << 20
    # Planes smaller than this (g elements) leave the kernel gradient to
    # few_outputs/F.conv2d: there one bmm per plane and column shift costs
    # more in calls than it saves.
    gradient_min_plane: int = 1 << 12


class TorchAdapter(Adapter):
    """torch: autograd Functions, banded in-place shift-and-add, ``F.conv2d`` for channels."""

    name = "torch"
    array_module = "torch"
    tuning = TorchTuning()
    native = True
    autodiff = True

    def correlate(self, xp, x, k, options, geometry):
        return correlate(xp, x, k, options, geometry)

    def prepare_correlate(self, xp, x, k, options, geometry):
        dtype = result_dtype(xp, x.dtype, k.dtype)
        if (
            options.method == "direct"
            and k.ndim == 2
            and geometry.inside
            and (dtype.is_floating_point or dtype.is_complex)
            and math.prod(geometry.out_shape) <= self.tuning.small_band  # one band ...
            and math.prod(geometry.out_shape) < self.tuning.pooled_elements  # ... on the calling thread
        ):
            return _small_direct(xp, dtype, options, geometry)
        return super().prepare_correlate(xp, x, k, options, geometry)

    def same_device(self, x, k):
        return x.device == k.device

    def vjp(self, xp, x, k, g, options, geometry, need_x, need_k):
        # The FFT method takes both gradients from one spectrum of g.
        both = fft_vjp(xp, x, k, g, options, geometry, need_x, need_k)
        if both is not NotImplemented:
            return both
        return super().vjp(xp, x, k, g, options, geometry, need_x, need_k)

    def kernel_gradient(self, xp, x, k, g, options, geometry, method):
        gk = kernel_gradient(xp, x, k, g, options, geometry, method)
        if gk is not NotImplemented:
            return gk
        # The kernel gradient's h*w large dot products are a correlation with
        # g as the kernel: native_forward (few_outputs' banded dot products).
        method = "native" if method == "direct" else method
        return super().kernel_gradient(xp, x, k, g, options, geometry, method)

    def correlate_multi(self, xp, x, w, options, geometry, groups):
        if options.method in ("auto", "native"):
            y = correlate_multi(xp, x, w, options, geometry, groups)
            if y is not NotImplemented:
                return y
        return super().correlate_multi(xp, x, w, options, geometry, groups)

    def correlate_multi_bias(self, xp, x, w, b, options, geometry, groups):
        if options.method in ("auto", "native"):
            y = correlate_multi(xp, x, w, options, geometry, groups, bias=b)
            if y is not NotImplemented:
                return y
        return super().correlate_multi_bias(xp, x, w, b, options, geometry, groups)

    def correlate_multi_transpose(self, xp, x, w, plan):
        y = correlate_multi_transpose(xp, x, w, plan)
        if y is not NotImplemented:
            return y
        return super().correlate_multi_transpose(xp, x, w, plan)

    def correlate_multi_transpose_bias(self, xp, x, w, b, plan):
        y = correlate_multi_transpose(xp, x, w, plan, bias=b)
        if y is not NotImplemented:
            return y
        return super().correlate_multi_transpose_bias(xp, x, w, b, plan)

    def layer_class(self):
        return Conv2D

    def transpose_layer_class(self):
        return Conv2DTranspose

    def fit(self, layer, x, y, lr, steps, loss, record):
        return _fit(layer, x, y, lr, steps, loss, record)

    def gradient(self, fn, x, index):
        return _gradient(fn, x, index), "torch.autograd"

    def to_numpy(self, a):
        return a.detach().cpu().numpy()

    def from_numpy(self, a, *, device=None):
        return torch.asarray(a.copy(), device=device)

    def device(self, kind):
        if kind == "gpu":
            if not torch.cuda.is_available():
                msg = "torch sees no CUDA device"
                raise LookupError(msg)
            return torch.device("cuda")
        return super().device(kind)

    def with_parameters(self, layer, params):
        if params:
            layer = layer.to(next(iter(params.values())).device)
        with torch.no_grad():
            for name, value in params.items():
                getattr(layer, name).copy_(value)
        return layer


ADAPTER = TorchAdapter()

# torch.compile and torch.export put calls of these functions into their
# graphs whole instead of tracing the core's Python (argument checks, the
# caches of prepared calls, array-api-compat's lookups): the graph is then
# traced through them with tracer tensors, which ``tracing`` sends down
# ``traceable_correlate`` and ``correlate_multi``.
for _function in (corr2d, conv2d, corr2d_multi, conv_transpose2d, corr2d_transpose):
    torch.compiler.allow_in_graph(_function)
