"""numba's kernel gradient as an XLA custom call: jax's direct backward on the CPU.

The kernel gradient is ``h*w`` sums over the whole image. XLA's CPU backend
emits them as ``h*w`` separate reductions (19 ms at 1024², 3x3) or, at
best, as one convolution with ``g`` as the kernel (1.3 ms, 55 ms at 4096²),
while the numpy adapter's numba kernel (``_numba_kernels.kgrad``) takes
them in one pass over ``g`` and ``x``: 0.55 ms and 11 ms. This module
registers that kernel with XLA through jax's FFI (``jax.ffi``), so it runs
inside jitted code on jax's own buffers: no copy, no host callback, traced
by ``jax.jit``, mapped by ``jax.vmap`` (one call per mapped element).

The handler is a numba ``cfunc`` of the typed XLA FFI ABI
(``XLA_FFI_Error* handler(XLA_FFI_CallFrame*)``, ``xla/ffi/api/c_api.h``
under ``jax.ffi.include_dir()``). It reads the call frame itself: the
operands ``x`` (planes, H, W), ``g`` (planes, R, C) and ``consts`` (fill
value, zero), the int64 array attribute ``params`` and the (h, w) result.
The offsets below are the C layout of those structs on 64-bit platforms.
Imported by ``backends/jax.py`` only when a large enough float32/float64
kernel gradient is traced with numba installed and jax on the CPU.
"""

from __future__ import annotations

import ctypes
from functools import cache

import jax
import numba
import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _numba_kernels

# --- the call frame (xla/ffi/api/c_api.h), in 8-byte words ------------------

# XLA_FFI_CallFrame: struct_size, extension_start, api, ctx, stage, then the
# XLA_FFI_Args (5 words), XLA_FFI_Rets (5) and XLA_FFI_Attrs (6) structs.
FRAME_WORDS = 21
EXTENSION, API = 1, 2
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
# then the function table, XLA_FFI_Error_Create first.
API_VERSION_WORD, API_ERROR_CREATE = 4, 6
ATTR_ARRAY = 1
DTYPE_S64, DTYPE_F32, DTYPE_F64 = 5, 11, 12
INVALID_ARGUMENT = 3
# params: r0, c0, row stride, column stride, row dilation, column dilation.
PARAMS = 6

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
def _error(typingctx, api, message):
    """``api->XLA_FFI_Error_Create({message, INVALID_ARGUMENT})``: the handler's error result.

    ``message`` is the address of a NUL-terminated string; the error's
    address is returned as an int64.
    """
    sig = types.int64(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        i8p, i32, i64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)
        # XLA_FFI_Error_Create_Args {size_t struct_size; extension_start; message; errc}
        struct = ir.LiteralStructType([i64, i8p, i8p, i32])
        slot = cgutils.alloca_once(builder, struct)
        fields = (
            ir.Constant(i64, 28),  # offsetof(errc) + sizeof(errc)
            ir.Constant(i8p, None),
            builder.inttoptr(args[1], i8p),
            ir.Constant(i32, INVALID_ARGUMENT),
        )
        for i, value in enumerate(fields):
            builder.store(value, builder.gep(slot, [ir.Constant(i32, 0), ir.Constant(i32, i)]))
        table = builder.inttoptr(args[0], i64.as_pointer())
        address = builder.load(builder.gep(table, [ir.Constant(i32, API_ERROR_CREATE)]))
        create = builder.inttoptr(address, ir.FunctionType(i8p, [struct.as_pointer()]).as_pointer())
        return builder.ptrtoint(builder.call(create, [slot]), i64)

    return sig, codegen


jit = numba.njit(cache=True, nogil=True)
_INT = np.int64(0)
_MESSAGE = np.frombuffer(b"xcorr kernel gradient: operands of an unexpected type or shape\0", dtype=np.uint8)


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
def _kernel_gradient(frame_address, like, dtype_code):  # pragma: no cover - compiled
    """The handler: ``kgrad`` over every row of the operands, or an XLA_FFI_Error."""
    frame = _words(frame_address, FRAME_WORDS)
    if frame[EXTENSION] != 0 and _metadata(frame):
        return 0
    ok = frame[ARGS_SIZE] == 3 and frame[RETS_SIZE] == 1 and frame[ATTRS_SIZE] == 1
    if not ok or (_words(frame[ATTR_TYPES], 1)[0] & 0xFFFFFFFF) != ATTR_ARRAY:
        return _error(frame[API], _MESSAGE.ctypes.data)
    args = _words(frame[ARGS], 3)
    x_data, x_dims, ok_x = _buffer(args[0], dtype_code, 3)
    g_data, g_dims, ok_g = _buffer(args[1], dtype_code, 3)
    c_data, c_dims, ok_c = _buffer(args[2], dtype_code, 1)
    o_data, o_dims, ok_o = _buffer(_words(frame[RETS], 1)[0], dtype_code, 2)
    attr = _words(_words(frame[ATTRS], 1)[0], 3)
    ok = ok_x and ok_g and ok_c and ok_o and (attr[ARRAY_DTYPE] & 0xFFFFFFFF) == DTYPE_S64
    if not ok or attr[ARRAY_SIZE] != PARAMS or x_dims[0] != g_dims[0] or c_dims[0] != 2:
        return _error(frame[API], _MESSAGE.ctypes.data)
    x = carray(_pointer(x_data, like), (x_dims[0], x_dims[1], x_dims[2]))
    g = carray(_pointer(g_data, like), (g_dims[0], g_dims[1], g_dims[2]))
    consts = carray(_pointer(c_data, like), (2,))
    out = carray(_pointer(o_data, like), (o_dims[0], o_dims[1]))
    p = carray(_pointer(attr[ARRAY_DATA], _INT), (PARAMS,))
    acc = np.zeros(out.shape, dtype=np.float64)
    rows = g.shape[0] * g.shape[1]
    _numba_kernels.kgrad(x, g, consts, acc, p[0], p[1], p[2], p[3], p[4], p[5], 0, rows)
    for a in range(acc.shape[0]):
        for b in range(acc.shape[1]):
            out[a, b] = acc[a, b]
    return 0


@numba.cfunc(HANDLER, cache=True, nogil=True)
def kernel_gradient_float32(frame):  # pragma: no cover - compiled
    return _void_pointer(_kernel_gradient(frame, np.float32(0), DTYPE_F32))


@numba.cfunc(HANDLER, cache=True, nogil=True)
def kernel_gradient_float64(frame):  # pragma: no cover - compiled
    return _void_pointer(_kernel_gradient(frame, np.float64(0), DTYPE_F64))


_HANDLERS = {np.dtype(np.float32): kernel_gradient_float32, np.dtype(np.float64): kernel_gradient_float64}


@cache
def _target(dtype) -> str:
    """The registered FFI target name for ``dtype`` (registered on first use)."""
    name = f"xcorr_kernel_gradient_{np.dtype(dtype).name}"
    address = _HANDLERS[np.dtype(dtype)].address
    handler = ctypes.cast(address, ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p))
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(handler), platform="cpu")
    return name


def kernel_gradient(x, g, consts, k_shape, params):
    """The (h, w) kernel gradient of ``x`` (planes, H, W) and ``g`` (planes, R, C), traceable.

    ``consts`` is ``[fill value, 0]`` in x's dtype, ``params`` the six ints
    ``r0, c0, row stride, column stride, row dilation, column dilation``
    that ``_numba_kernels.kgrad`` takes.
    """
    call = jax.ffi.ffi_call(_target(x.dtype), jax.ShapeDtypeStruct(k_shape, x.dtype), vmap_method="sequential")
    return call(x, g, consts, params=np.asarray(params, dtype=np.int64))
