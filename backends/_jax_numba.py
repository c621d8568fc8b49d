"""numba's direct kernels as XLA custom calls: jax's direct correlation and kernel gradient on the CPU.

The kernel gradient is ``h*w`` sums over the whole image. XLA's CPU backend
emits them as ``h*w`` separate reductions or, at best, as one convolution
with ``g`` as the kernel, while the numpy adapter's numba kernel
(``_numba_kernels.kgrad``) takes them in one pass over ``g`` and ``x``
(several times faster: the README's jax backward table). And on large
images XLA's fused shift-and-add reads its input once per kernel row, where ``_numba_kernels.corr`` keeps each output
row in L1 for all taps. This module registers both kernels with XLA
through jax's FFI (``jax.ffi``), so they run inside jitted code on jax's
own buffers: no copy, no host callback, traced by ``jax.jit``, mapped by
``jax.vmap`` (one call per mapped element).

The handlers are numba ``cfunc``s of the typed XLA FFI ABI
(``XLA_FFI_Error* handler(XLA_FFI_CallFrame*)``, ``xla/ffi/api/c_api.h``
under ``jax.ffi.include_dir()``) that read the call frame themselves:
three operands (the input as (planes, H, W); ``g`` (planes, R, C) or the
kernel (h, w); ``consts``, the fill value and a zero), the int64 array
attribute ``params`` and one result. The offsets below are the C layout of
those structs on 64-bit platforms. Large calls split their rows into
chunks that the handler and XLA's own thread pool claim one at a time.
Imported by ``backends/jax/ops.py`` only when such a call is traced with numba
installed and jax on the CPU.
"""

from __future__ import annotations

import ctypes
import functools
import math
import threading

import jax
import numba
import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _hugepages, _numba, _numba_kernels
from ._numba_cache import CACHE

# --- the call frame (xla/ffi/api/c_api.h), in 8-byte words ------------------

# XLA_FFI_CallFrame: struct_size, extension_start, api, ctx, stage, then the
# XLA_FFI_Args (5 words), XLA_FFI_Rets (5) and XLA_FFI_Attrs (6) structs.
FRAME_WORDS = 21
EXTENSION, API, CONTEXT = 1, 2, 3
ARGS_SIZE, ARGS = 7, 9
RETS_SIZE, RETS = 12, 14
ATTRS_SIZE, ATTR_TYPES, ATTRS = 17, 18, 20
# XLA_FFI_Buffer: struct_size, extension_start, dtype, data, rank, dims.
BUFFER_DTYPE, BUFFER_DATA, BUFFER_RANK, BUFFER_DIMS = 2, 3, 4, 5
# XLA_FFI_Array (an array attribute): dtype, size, data.
ARRAY_DTYPE, ARRAY_SIZE, ARRAY_DATA = 0, 1, 2
# XLA_FFI_Extension_Base: struct_size, type, next; the metadata extension
# adds a pointer to XLA_FFI_Metadata.
EXTENSION_TYPE, EXTENSION_METADATA = 1, 3
METADATA_EXTENSION = 1
# XLA_FFI_Api: struct_size, extension_start, api_version (3 words: its
# major and minor versions are the two int32 halves of word 4), internal_api,
# then the function table.
API_VERSION_WORD = 4
API_ERROR_CREATE, API_ERROR_DESTROY, API_THREAD_POOL_SCHEDULE = 6, 8, 17
ATTR_ARRAY = 1
DTYPE_S64, DTYPE_F32, DTYPE_F64 = 5, 11, 12
INVALID_ARGUMENT, RESOURCE_EXHAUSTED = 3, 8
# params: r0, c0, row stride, column stride, row dilation, column dilation,
# the number of row chunks and of threads to share them (1, 1: no split),
# and whether to ask for huge pages for the result (_hugepages).
PARAMS = 9
MADV_HUGEPAGE, PAGE = _hugepages.MADV_HUGEPAGE, _hugepages.PAGE

# A call's job, malloc'ed (it outlives the handler when a pool thread
# starts late), in int64 words: references held (the handler's and one per
# scheduled task; the last to let go frees it), the next chunk to claim,
# chunks finished, chunks, rows per chunk, total rows, the kernel (CORR or
# KGRAD), then the operands as (data, three dims): the input, g or the
# kernel, the result; consts, the six params, and scratch space: the
# chunks' float64 partial sums (KGRAD) or a row of the fill value (CORR).
JOB_REFS, JOB_NEXT, JOB_DONE, JOB_CHUNKS, JOB_CHUNK_ROWS, JOB_ROWS, JOB_KIND = range(7)
JOB_A, JOB_B, JOB_OUT, JOB_CONSTS, JOB_PARAMS, JOB_SCRATCH = 7, 11, 15, 19, 20, 26
CORR, KGRAD = 0, 1

HANDLER = types.voidptr(types.voidptr)


@intrinsic
def _pointer(typingctx, address, like):
    """``address`` (an int64 or a ``void*``) as a pointer to values of ``like``'s type."""
    sig = types.CPointer(like)(address, like)

    def codegen(context, builder, signature, args):
        target = context.get_value_type(signature.return_type)
        if isinstance(address, types.RawPointer):
            return builder.bitcast(args[0], target)
        return builder.inttoptr(args[0], target)

    return sig, codegen


@intrinsic
def _void_pointer(typingctx, address):
    """``address`` (an int64) as a ``void*``: the handler's result."""
    sig = types.voidptr(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


@intrinsic
def _call(typingctx, function, w0, w1, w2, w3, w4):
    """``function(&{w0, ..., w4})`` for an XLA FFI API function (all int64 words), its result as an int64.

    Each API function takes a pointer to its arguments' struct; the struct
    (five words here, on the stack) starts with its own size, so a function
    reads only the words it knows.
    """
    sig = types.int64(types.int64, types.int64, types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        struct = cgutils.alloca_once(builder, i64, size=5)
        for i, word in enumerate(args[1:]):
            builder.store(word, builder.gep(struct, [ir.Constant(i32, i)]))
        fnty = ir.FunctionType(cgutils.voidptr_t, [cgutils.voidptr_t])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.ptrtoint(builder.call(fn, [builder.bitcast(struct, cgutils.voidptr_t)]), i64)

    return sig, codegen


@intrinsic
def _atomic_add(typingctx, address, value):
    """``*address += value`` on an int64, atomically (sequentially consistent); the old value."""
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        pointer = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.atomic_rmw("add", pointer, args[1], "seq_cst")

    return sig, codegen


def _c_function(builder, name, result, *params):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(result, list(params)), name)


@intrinsic
def _malloc(typingctx, size):
    """The C library's ``malloc(size)``, its result as an int64 (0 if it failed)."""

    def codegen(context, builder, signature, args):
        fn = _c_function(builder, "malloc", cgutils.voidptr_t, ir.IntType(64))
        return builder.ptrtoint(builder.call(fn, [args[0]]), ir.IntType(64))

    return types.int64(types.int64), codegen


@intrinsic
def _free(typingctx, address):
    """The C library's ``free``."""

    def codegen(context, builder, signature, args):
        fn = _c_function(builder, "free", ir.VoidType(), cgutils.voidptr_t)
        builder.call(fn, [builder.inttoptr(args[0], cgutils.voidptr_t)])
        return context.get_dummy_value()

    return types.none(types.int64), codegen


@intrinsic
def _madvise(typingctx, address, length, advice):
    """The C library's ``madvise`` (a hint; its result is ignored)."""

    def codegen(context, builder, signature, args):
        fn = _c_function(builder, "madvise", ir.IntType(32), cgutils.voidptr_t, ir.IntType(64), ir.IntType(32))
        address = builder.inttoptr(args[0], cgutils.voidptr_t)
        builder.call(fn, [address, args[1], builder.trunc(args[2], ir.IntType(32))])
        return context.get_dummy_value()

    return types.none(types.int64, types.int64, types.int64), codegen


@intrinsic
def _yield(typingctx):
    """``sched_yield()``: let a preempted pool thread finish its chunk."""

    def codegen(context, builder, signature, args):
        builder.call(_c_function(builder, "sched_yield", ir.IntType(32)), [])
        return context.get_dummy_value()

    return types.none(), codegen


jit = numba.njit(cache=CACHE, nogil=True)
_INT = np.int64(0)
_MESSAGE = np.frombuffer(b"xcorr (numba custom call): operands of an unexpected type or shape\0", dtype=np.uint8)
_NO_MEMORY = np.frombuffer(b"xcorr (numba custom call): out of memory\0", dtype=np.uint8)


@jit
def _words(address, n):  # pragma: no cover - compiled
    return carray(_pointer(address, _INT), (n,))


@jit
def _metadata(frame):  # pragma: no cover - compiled
    # Registration asks the handler which API version it speaks: the
    # runtime's own (read from frame->api), no traits.
    ext = _words(frame[EXTENSION], 4)
    if (ext[EXTENSION_TYPE] & 0xFFFFFFFF) != METADATA_EXTENSION:
        return False
    meta = _words(ext[EXTENSION_METADATA], 5)
    # XLA_FFI_Metadata: struct_size, api_version {struct_size, extension_start,
    # major | minor << 32}, traits.
    meta[1] = 24
    meta[2] = 0
    meta[3] = _words(frame[API], 5)[API_VERSION_WORD] if frame[API] != 0 else 0
    meta[4] = 0
    return True


@jit
def _buffer(address, dtype_code, rank):  # pragma: no cover - compiled
    """``(data, dims, ok)`` of an XLA_FFI_Buffer: ok if it has this dtype and rank."""
    buffer = _words(address, 6)
    ok = (buffer[BUFFER_DTYPE] & 0xFFFFFFFF) == dtype_code and buffer[BUFFER_RANK] == rank
    return buffer[BUFFER_DATA], _words(buffer[BUFFER_DIMS], rank), ok


@jit
def _array3(words, at, like):  # pragma: no cover - compiled
    return carray(_pointer(words[at], like), (words[at + 1], words[at + 2], words[at + 3]))


@jit
def _job_work(job, like):  # pragma: no cover - compiled
    """Claim row chunks of a job one at a time until none are left, and compute them."""
    w = _words(job, JOB_SCRATCH)
    a = _array3(w, JOB_A, like)
    consts = carray(_pointer(w[JOB_CONSTS], like), (2,))
    chunks, size, rows = w[JOB_CHUNKS], w[JOB_CHUNK_ROWS], w[JOB_ROWS]
    p = w[JOB_PARAMS : JOB_PARAMS + 6]
    scratch = job + 8 * JOB_SCRATCH
    while True:
        c = _atomic_add(job + 8 * JOB_NEXT, 1)
        if c >= chunks:
            return
        start = c * size
        stop = min(rows, start + size)
        if w[JOB_KIND] == KGRAD:
            g = _array3(w, JOB_B, like)
            part = carray(_pointer(scratch, np.float64(0)), (chunks, w[JOB_OUT + 1], w[JOB_OUT + 2]))[c]
            part[:] = 0.0
            _numba_kernels.kgrad(a, g, consts, part, p[0], p[1], p[2], p[3], p[4], p[5], start, stop)
        else:
            k = carray(_pointer(w[JOB_B], like), (w[JOB_B + 1], w[JOB_B + 2]))
            out = _array3(w, JOB_OUT, like)
            fillrow = carray(_pointer(scratch, like), (out.shape[2],))
            _numba_kernels.corr(a, k, out, fillrow, p[0], p[1], p[2], p[3], p[4], p[5], start, stop)
        _atomic_add(job + 8 * JOB_DONE, 1)


@jit
def _job_release(job):  # pragma: no cover - compiled
    if _atomic_add(job + 8 * JOB_REFS, -1) == 1:
        _free(job)


def _job_task(job, like):  # pragma: no cover - compiled
    _job_work(job, like)
    _job_release(job)


@intrinsic
def _task(typingctx, like):
    """The address of ``void task(void* job)``, a C function that works on a job and lets it go.

    It is defined in the calling function's own module (its address is
    linked in each process, never baked into a cache), for XLA's thread
    pool (``XLA_FFI_ThreadPool_Schedule``).
    """

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fn = _c_function(builder, f"xcorr_task_{like}", ir.VoidType(), cgutils.voidptr_t)
        if fn.is_declaration:
            fn.linkage = "internal"
            body = ir.IRBuilder(fn.append_basic_block())
            task_signature = types.none(types.int64, like)
            compiled = context.compile_subroutine(body, _job_task, task_signature)
            job = body.ptrtoint(fn.args[0], i64)
            zero = context.get_constant(like, 0)  # only its type matters
            # No exception can come out of it (no bounds checks, no raise).
            context.call_internal_no_propagate(body, compiled.fndesc, task_signature, [job, zero])
            body.ret_void()
        return builder.ptrtoint(fn, i64)

    return types.int64(like), codegen


@jit
def _store(words, at, data, dims, rank):  # pragma: no cover - compiled
    words[at] = data
    for i in range(3):
        words[at + 1 + i] = dims[i] if i < rank else 1


@jit
def _handle(frame_address, like, dtype_code, kind):  # pragma: no cover - compiled
    """A handler: the kernel over every row of the operands, or an XLA_FFI_Error."""
    frame = _words(frame_address, FRAME_WORDS)
    if frame[EXTENSION] != 0 and _metadata(frame):
        return 0
    api = _words(frame[API], API_THREAD_POOL_SCHEDULE + 1)
    ok = frame[ARGS_SIZE] == 3 and frame[RETS_SIZE] == 1 and frame[ATTRS_SIZE] == 1
    if not ok or (_words(frame[ATTR_TYPES], 1)[0] & 0xFFFFFFFF) != ATTR_ARRAY:
        return _call(api[API_ERROR_CREATE], 28, 0, _MESSAGE.ctypes.data, INVALID_ARGUMENT, 0)
    args = _words(frame[ARGS], 3)
    b_rank, out_rank = (3, 2) if kind == KGRAD else (2, 3)
    a_data, a_dims, ok_a = _buffer(args[0], dtype_code, 3)
    b_data, b_dims, ok_b = _buffer(args[1], dtype_code, b_rank)
    c_data, c_dims, ok_c = _buffer(args[2], dtype_code, 1)
    o_data, o_dims, ok_o = _buffer(_words(frame[RETS], 1)[0], dtype_code, out_rank)
    attr = _words(_words(frame[ATTRS], 1)[0], 3)
    ok = ok_a and ok_b and ok_c and ok_o and c_dims[0] == 2
    ok = ok and (attr[ARRAY_DTYPE] & 0xFFFFFFFF) == DTYPE_S64 and attr[ARRAY_SIZE] == PARAMS
    # The planes of the input are those of g (KGRAD) or of the result (CORR).
    ok = ok and a_dims[0] == (b_dims[0] if kind == KGRAD else o_dims[0])
    if not ok:
        return _call(api[API_ERROR_CREATE], 28, 0, _MESSAGE.ctypes.data, INVALID_ARGUMENT, 0)
    p = carray(_pointer(attr[ARRAY_DATA], _INT), (PARAMS,))
    rows_of = b_dims if kind == KGRAD else o_dims
    rows = rows_of[0] * rows_of[1]
    size = -(-rows // max(p[6], 1)) if rows > 0 else 1
    chunks = -(-rows // size)
    threads = min(p[7], chunks)
    scratch = chunks * o_dims[0] * o_dims[1] if kind == KGRAD else o_dims[2]
    job = _malloc(8 * (JOB_SCRATCH + scratch))
    if job == 0:
        return _call(api[API_ERROR_CREATE], 28, 0, _NO_MEMORY.ctypes.data, RESOURCE_EXHAUSTED, 0)
    words = _words(job, JOB_SCRATCH)
    words[JOB_NEXT], words[JOB_DONE], words[JOB_CHUNKS] = 0, 0, chunks
    words[JOB_CHUNK_ROWS], words[JOB_ROWS], words[JOB_KIND] = size, rows, kind
    _store(words, JOB_A, a_data, a_dims, 3)
    _store(words, JOB_B, b_data, b_dims, b_rank)
    _store(words, JOB_OUT, o_data, o_dims, out_rank)
    words[JOB_CONSTS] = c_data
    words[JOB_PARAMS : JOB_PARAMS + 6] = p[:6]
    if kind == CORR:
        if p[8]:  # huge pages for the fresh result, before its first write
            nbytes = o_dims[0] * o_dims[1] * o_dims[2] * (8 if dtype_code == DTYPE_F64 else 4)
            start, stop = -(-o_data // PAGE) * PAGE, (o_data + nbytes) // PAGE * PAGE
            if stop > start:
                _madvise(start, stop - start, MADV_HUGEPAGE)
        consts = carray(_pointer(c_data, like), (2,))
        carray(_pointer(job + 8 * JOB_SCRATCH, like), (o_dims[2],))[:] = consts[0]
    if api[0] < 8 * (API_THREAD_POOL_SCHEDULE + 1):  # an older API without a thread pool
        threads = 1
    words[JOB_REFS] = max(threads, 1)
    task = _task(like)
    for _ in range(threads - 1):
        error = _call(api[API_THREAD_POOL_SCHEDULE], 40, 0, frame[CONTEXT], task, job)
        if error != 0:  # no thread pool: the handler does that task's share
            _call(api[API_ERROR_DESTROY], 24, 0, error, 0, 0)
            _job_release(job)
    _job_work(job, like)
    # Every chunk is claimed; wait only for those still being computed.
    while _atomic_add(job + 8 * JOB_DONE, 0) < chunks:
        _yield()
    if kind == KGRAD:
        partials = carray(_pointer(job + 8 * JOB_SCRATCH, np.float64(0)), (chunks, o_dims[0], o_dims[1]))
        out = carray(_pointer(o_data, like), (o_dims[0], o_dims[1]))
        for a in range(out.shape[0]):
            for b in range(out.shape[1]):
                total = 0.0
                for c in range(chunks):  # in chunk order: the result does not depend on the threads
                    total += partials[c, a, b]
                out[a, b] = total
    _job_release(job)
    return 0


def correlate_float32(frame):  # pragma: no cover - compiled
    return _void_pointer(_handle(frame, np.float32(0), DTYPE_F32, CORR))


def correlate_float64(frame):  # pragma: no cover - compiled
    return _void_pointer(_handle(frame, np.float64(0), DTYPE_F64, CORR))


def kernel_gradient_float32(frame):  # pragma: no cover - compiled
    return _void_pointer(_handle(frame, np.float32(0), DTYPE_F32, KGRAD))


def kernel_gradient_float64(frame):  # pragma: no cover - compiled
    return _void_pointer(_handle(frame, np.float64(0), DTYPE_F64, KGRAD))


# The handlers, compiled (or loaded from numba's cache) when first used.
_HANDLERS = {
    ("correlate", "float32"): correlate_float32,
    ("correlate", "float64"): correlate_float64,
    ("kernel_gradient", "float32"): kernel_gradient_float32,
    ("kernel_gradient", "float64"): kernel_gradient_float64,
}

# Registered handlers by FFI target name, kept for the life of the process:
# XLA calls into their code.
_COMPILED: dict[str, object] = {}
# Held while a handler is compiled and registered: XLA refuses a second
# registration of a name with another address, so threads making their
# first calls at once must compile and register each handler exactly once.
_REGISTER = threading.Lock()


def _target(kernel: str, dtype) -> str:
    """The FFI target name of a handler, compiled and registered on first use (once per process)."""
    name = f"xcorr_{kernel}_{np.dtype(dtype).name}"
    if name in _COMPILED:
        return name
    with _REGISTER:
        if name not in _COMPILED:
            compiled = numba.cfunc(HANDLER, cache=CACHE, nogil=True)(_HANDLERS[kernel, np.dtype(dtype).name])
            handler = ctypes.cast(compiled.address, ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p))
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(handler), platform="cpu")
            _COMPILED[name] = compiled
    return name


def _split(rows: int, work: int, threaded_work: int) -> tuple[int, int]:
    """``(chunks, threads)`` for ``rows`` rows and ``work`` products (as ``_numba`` splits for numpy)."""
    threads = _numba.threads()
    chunks = len(_numba._chunks(rows, threads, work, threaded_work))
    return chunks, (threads if chunks > 1 else 1)


def _huge(shape, dtype) -> int:
    """1 if the handler should ask for huge pages for a result (``_hugepages``), else 0."""
    return int(_hugepages.enabled() and math.prod(shape) * np.dtype(dtype).itemsize >= _hugepages.MIN_BYTES)


def _call_kernel(kernel, result, a, b, consts, params, split, huge=0):
    call = jax.ffi.ffi_call(_target(kernel, a.dtype), result, vmap_method="sequential")
    return call(a, b, consts, params=np.asarray((*params, *split, huge), dtype=np.int64))


def correlate(x, k, consts, out_shape, params, *, threaded_work=_numba.THREADED_WORK):
    """The correlation of ``x`` (planes, H, W) with ``k`` (h, w): (planes, R, C), traceable.

    ``consts`` is ``[fill value, 0]`` in x's dtype, ``params`` the six ints
    ``r0, c0, row stride, column stride, row dilation, column dilation``
    that ``_numba_kernels.corr`` takes (rows outside ``x`` read the fill
    value; with a column stride, every window must lie inside ``x``).
    Rows are split between threads from ``threaded_work`` products.
    """
    rows = out_shape[0] * out_shape[1]
    split = _split(rows, rows * out_shape[2] * math.prod(k.shape), threaded_work)
    result = jax.ShapeDtypeStruct(out_shape, x.dtype)
    return _call_kernel("correlate", result, x, k, consts, params, split, _huge(out_shape, x.dtype))


def kernel_gradient(x, g, consts, k_shape, params, *, threaded_work=_numba.THREADED_WORK):
    """The (h, w) kernel gradient of ``x`` (planes, H, W) and ``g`` (planes, R, C), traceable.

    ``consts`` and ``params`` as for ``correlate``; ``_numba_kernels.kgrad``
    takes them. Each chunk of rows sums into its own float64 partial, and
    the partials are added in chunk order: the result does not depend on
    which thread took which chunk.
    """
    rows = g.shape[0] * g.shape[1]
    split = _split(rows, rows * g.shape[2] * math.prod(k_shape), threaded_work)
    return _call_kernel("kernel_gradient", jax.ShapeDtypeStruct(k_shape, x.dtype), x, g, consts, params, split)


# --- the layout the handlers read, checked before any is registered ---------------

# The XLA FFI API versions (major, minor) the handlers were tested against.
TESTED_API_VERSIONS = frozenset({(0, 3)})
# The structs the handlers read by word offset (for XLA_FFI_Api only the
# fields up to the last function it calls), as c_api.h declares them.
STRUCTS = (
    "XLA_FFI_Api_Version", "XLA_FFI_Extension_Base", "XLA_FFI_Metadata_Extension", "XLA_FFI_Metadata",
    "XLA_FFI_Buffer", "XLA_FFI_Args", "XLA_FFI_Rets", "XLA_FFI_Attrs", "XLA_FFI_Array", "XLA_FFI_CallFrame",
    "XLA_FFI_Api",
)  # fmt: skip
LAST_API_FIELD = "XLA_FFI_ThreadPool_Schedule"
# sha256 of ``_declarations`` of the tested header (jaxlib 0.10.2's, API 0.3).
TESTED_LAYOUT = "cb03aff2a36105b480a79eccfbde8ae92e6daaeb4fbeb87c370444f90eaa73f5"


def _declarations(header: str) -> str:
    """The field declarations of ``STRUCTS`` in ``header`` (c_api.h), comments and spacing removed."""
    import re

    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", header, flags=re.S)
    parts = []
    for name in STRUCTS:
        match = re.search(rf"^(?:typedef )?struct {name} \{{(.*?)^\}}", text, flags=re.S | re.M)
        if match is None:
            return ""
        fields = [" ".join(f.split()) for f in match.group(1).split(";") if f.strip()]
        if name == "XLA_FFI_Api":
            last = next((i for i, f in enumerate(fields) if LAST_API_FIELD in f), None)
            if last is None:
                return ""
            fields = fields[: last + 1]
        parts.append(f"{name}{{{';'.join(fields)}}}")
    return "\n".join(parts)


def header_layout() -> tuple[tuple[int, int] | None, str]:
    """The FFI API version and the sha256 of the struct declarations of jaxlib's c_api.h."""
    import hashlib
    import os
    import re

    try:
        with open(os.path.join(jax.ffi.include_dir(), "xla", "ffi", "api", "c_api.h")) as f:
            header = f.read()
    except OSError:
        return None, ""
    numbers = dict(re.findall(r"#define XLA_FFI_API_(MAJOR|MINOR)\s+(\d+)", header))
    version = (int(numbers["MAJOR"]), int(numbers["MINOR"])) if len(numbers) == 2 else None
    return version, hashlib.sha256(_declarations(header).encode()).hexdigest()


@functools.cache
def layout_supported() -> bool:
    """Whether this jaxlib's FFI structs are the ones the handlers were tested on.

    Any other version or layout takes XLA's own code (with one warning): the
    handlers read those structs by fixed word offsets and must never read a
    layout that may have changed.
    """
    import warnings

    version, digest = header_layout()
    if version in TESTED_API_VERSIONS and digest == TESTED_LAYOUT:
        return True
    msg = (
        f"xcorr: jaxlib's XLA FFI API {version} (struct layout {digest[:12] or 'unreadable'}) is not one "
        f"xcorr's numba custom calls were tested on; jax takes XLA's own code for them instead"
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return False
