"""The habits users bring from ``torch.nn.Conv2d`` and ``keras.layers.Conv2D``: their spellings,
refused with a message that gives the xcorr call meaning the same (tests/test_torch_habits.py
checks that each suggestion runs and, where both exist, equals torch's layer)."""

from __future__ import annotations

#: nn.Conv2d's / nn.ConvTranspose2d's positional order.
_NN_MODULE_ORDER = {
    "Conv2D": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
               "padding_mode"),
    "Conv2DTranspose": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                        "groups", "bias", "dilation", "padding_mode"),
}
_NN_MODULE_ORDER["Conv1D"] = _NN_MODULE_ORDER["Conv3D"] = _NN_MODULE_ORDER["Conv2D"]  # nn.Conv1d's, nn.Conv3d's
# nn.ConvTranspose1d's, nn.ConvTranspose3d's
_NN_MODULE_ORDER["Conv1DTranspose"] = _NN_MODULE_ORDER["Conv3DTranspose"] = _NN_MODULE_ORDER["Conv2DTranspose"]
#: the layers xcorr.keras has too
_KERAS_LAYERS = ("Conv1D", "Conv2D", "Conv2DTranspose", "Conv1DTranspose", "Conv3DTranspose")
#: the torch module each layer stands for
_NN_MODULE = {"Conv2D": "nn.Conv2d", "Conv2DTranspose": "nn.ConvTranspose2d", "Conv1D": "nn.Conv1d", "Conv3D": "nn.Conv3d",
              "Conv1DTranspose": "nn.ConvTranspose1d", "Conv3DTranspose": "nn.ConvTranspose3d"}
#: torch's padding_mode as xcorr's boundary: the same numbers (tests/test_padding.py).
PADDING_MODES = {"zeros": "fill", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
#: Keras' names of xcorr's parameters.
_KERAS_NAMES = {
    "filters": "out_channels",
    "strides": "stride",
    "dilation_rate": "dilation",
    "use_bias": "bias",
    "kernel_initializer": "weight_init",
    "bias_initializer": "bias_init",
}


class _Placeholder(str):
    """A value the user fills in, shown without quotes in a suggested call."""

    def __repr__(self) -> str:
        return str(self)


_OTHERS = _Placeholder("<input channels>")


def refuse_habits(name: str, args: tuple, kwargs: dict) -> None:
    """Raise a TypeError naming xcorr's spelling of torch's and Keras' constructor arguments.

    ``name`` is "Conv2D", "Conv2DTranspose", "Conv1D", "Conv3D", "Conv1DTranspose" or "Conv3DTranspose". Positional arguments after
    ``kernel_size`` (nn.Conv2d's order ``in_channels, out_channels,
    kernel_size``, Keras' ``filters, kernel_size``), ``kernel_size=``,
    ``padding_mode=``, Keras' ``filters=``, ``strides=``, ... and torch's
    ``device=`` are refused with the call that means the same in xcorr.
    """
    habits = set(kwargs) & {"kernel_size", "padding_mode", "device", *_KERAS_NAMES}
    if len(args) <= 1 and not habits:
        return
    reasons: list[str] = []
    call: dict[str, object] = dict(kwargs)
    if len(args) >= 3:
        order = _NN_MODULE_ORDER[name]
        if len(args) > len(order):
            msg = f"xcorr.{name} takes kernel_size and keyword arguments; got {len(args)} positional arguments"
            raise TypeError(msg)
        their_name = _NN_MODULE[name]
        reasons.append(
            f"xcorr.{name} takes kernel_size first and every other argument by keyword ({their_name}'s order is "
            "in_channels, out_channels, kernel_size)"
        )
        call = {**dict(zip(order, args)), **kwargs}
    elif len(args) == 2:
        ours = f"; xcorr.keras.{name} takes Keras' arguments" if name in _KERAS_LAYERS else ""
        reasons.append(
            f"xcorr.{name} takes kernel_size first and every other argument by keyword (keras.layers.{name}'s "
            f"order is filters, kernel_size{ours})"
        )
        call = {"filters": args[0], "kernel_size": args[1], **kwargs}
    elif args:
        call = {"kernel_size": args[0], **kwargs}
    if "kernel_size" in kwargs and len(args) == 1:
        reasons.append("kernel_size is given twice")
    elif "kernel_size" in kwargs:
        reasons.append(f"xcorr.{name} takes kernel_size as its first, positional argument")
    for keras, ours in _KERAS_NAMES.items():
        if keras in call:
            value = call.pop(keras)
            if keras == "filters":
                call.setdefault("in_channels", _OTHERS)
                call.setdefault("data_format", "channels_last")  # Keras' default
            call[ours] = value
            reasons.append(f"{keras}= (Keras) is {ours}= in xcorr")
    if "padding_mode" in call:
        mode = call.pop("padding_mode")
        if name.endswith("Transpose"):
            if mode != "zeros":
                msg = f"padding_mode must be 'zeros' ({_NN_MODULE[name]}'s only one); got {mode!r}"
                raise ValueError(msg)
            reasons.append(f"xcorr.{name} pads with zeros, {_NN_MODULE[name]}'s only padding_mode: drop it")
        elif mode in PADDING_MODES:
            if PADDING_MODES[mode] != "fill":
                call["boundary"] = PADDING_MODES[mode]
            reasons.append(f"padding_mode={mode!r} is boundary={PADDING_MODES[mode]!r} in xcorr")
        else:
            msg = f"padding_mode must be one of {', '.join(map(repr, PADDING_MODES))} (torch's); got {mode!r}"
            raise ValueError(msg)
    move = ""
    if "device" in call:
        move = f".to({call.pop('device')!r})"
        reasons.append("xcorr layers take no device=: make the layer, then move it")
    if call.get("padding") == 0 and name == "Conv2D":
        call.pop("padding")  # torch's default, xcorr's mode="valid"
    first = [repr(call.pop("kernel_size"))] if "kernel_size" in call else []
    leading = [k for k in ("in_channels", "out_channels") if k in call]
    keywords = [f"{k}={call[k]!r}" for k in [*leading, *(k for k in call if k not in leading)]]
    msg = f"{'; '.join(reasons)}: did you mean xcorr.{name}({', '.join([*first, *keywords])}){move}?"
    raise TypeError(msg)
