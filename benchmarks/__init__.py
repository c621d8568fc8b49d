"""Speed and memory of xcorr against each backend's own convolution.

Run ``python -m benchmarks`` from a checkout (see ``--help``); it is not part
of the installed package and not a test.
"""
