"""Per-framework adapters, installed as ``xcorr.backends``.

One module (or package, split by concern) per array library, imported only
when arrays of that library reach xcorr (``xcorr._registry.LIBRARIES`` says
which module serves which namespace). Each defines one ``ADAPTER``, an instance of a subclass of
:class:`xcorr.Adapter` that overrides what its library does better and
inherits the generic array-API code for the rest. Modules whose name starts
with an underscore are optional fast paths of an adapter (numba kernels, XLA
custom calls, huge pages); deleting one leaves a working library.
"""
