"""``python -m xcorr``: see ``python -m xcorr --help`` (the logic lives in ``xcorr._cli``)."""

from xcorr._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
