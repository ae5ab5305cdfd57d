"""A layer's weights in an OpenVINO IR: the Constants of NNCF's weight-decompression subgraph
(`Constant -> Convert -> [Subtract zero point] -> Multiply scale -> Convert`) or a plain float Constant,
read back as float32 numbers. Shared by LoRA fusing and hybrid int8 quantization."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sdedge.convert import ConvertError

__all__ = ["LayerWeights", "layer_weights", "dequantized"]


@dataclass
class LayerWeights:
    """The Constants of a layer's weight-decompression subgraph (zero and scale None for float weights)."""

    values: Any
    zero: Any | None
    scale: Any | None


def _const(output: Any) -> Any | None:
    """The Constant behind an output, through Convert nodes, or None."""
    node = output.get_node()
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    return node if node.get_type_name() == "Constant" else None


def layer_weights(layer_node: Any) -> LayerWeights:
    """The Constants behind a MatMul's or Convolution's second input (ConvertError when they are not NNCF's)."""
    node = layer_node.input_value(1).get_node()
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() == "Constant":
        return LayerWeights(node, None, None)
    if node.get_type_name() == "Multiply":
        a, b = node.input_value(0), node.input_value(1)
        scale, data = (_const(b), a) if _const(b) is not None else (_const(a), b)
        inner = data.get_node()
        if inner.get_type_name() == "Subtract":
            values, zero = _const(inner.input_value(0)), _const(inner.input_value(1))
        else:
            values, zero = _const(data), None
        if scale is not None and values is not None and (zero is not None or inner.get_type_name() != "Subtract"):
            return LayerWeights(values, zero, scale)
    raise ConvertError(f"{layer_node.get_friendly_name()}: weight compression not supported (int8 per channel, "
                       "fp16 and fp32 are; export with `sdedge convert --weight-format int8`)")


def dequantized(weights: LayerWeights) -> np.ndarray:
    """The weights as float32, as the decompression subgraph computes them (scale rounded to its own type)."""
    stored = weights.values.get_data().astype(np.float32)
    if weights.scale is None:
        return stored
    zero = weights.zero.get_data().astype(np.float32) if weights.zero is not None else 0.0
    return (stored - zero) * weights.scale.get_data().astype(np.float32)
