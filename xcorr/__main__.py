"""``python -m xcorr``: see ``python -m xcorr --help`` (the logic lives in ``xcorr._cli``)."""

from xcorr._cli import run

if __name__ == "__main__":
    run(prog="python -m xcorr")
