"""FLOPs of one UNet or VAE-decoder call, counted on the OpenVINO IR with static shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COUNTED = ("MatMul", "Convolution", "GroupConvolution", "ScaledDotProductAttention")


def op_flops(op: Any) -> float:
    """Multiply-add FLOPs (2 per MAC) of one static-shape op, 0 for ops we do not count."""
    kind = op.get_type_name()
    if kind not in COUNTED:
        return 0.0
    out = float(np.prod(list(op.get_output_partial_shape(0).to_shape())))
    inputs = [list(op.get_input_partial_shape(i).to_shape()) for i in range(op.get_input_size())]
    if kind == "MatMul":
        a, attrs = inputs[0], op.get_attributes()
        k = a[-1] if len(a) == 1 or not attrs.get("transpose_a") else a[-2]
        return 2.0 * out * k
    if kind == "Convolution":
        return 2.0 * out * float(np.prod(inputs[1][1:]))
    if kind == "GroupConvolution":
        return 2.0 * out * float(np.prod(inputs[1][2:]))
    q, k = inputs[0], inputs[1]  # SDPA: Q.K^T then A.V, both L x S x d per head
    return 2.0 * 2.0 * float(np.prod(q[:-1])) * k[-2] * q[-1]


def ir_flops(xml: Path, width: int, height: int, batch: int, tokens: int = 77) -> float:
    """FLOPs of one call of a UNet or VAE decoder IR at this image size and batch, with static shapes."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    fill = {4: {0: batch, 2: height // 8, 3: width // 8}, 3: {0: batch, 1: tokens}}  # latents, text embeddings
    shapes = {}
    for port in model.inputs:
        dims = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
        wanted = fill.get(len(dims), {0: batch})
        shapes[port.get_any_name()] = ov.PartialShape([wanted.get(i, 1) if d < 0 else d for i, d in enumerate(dims)])
    model.reshape(shapes)
    return sum(op_flops(op) for op in model.get_ordered_ops())
