#!/usr/bin/env python3
"""Make MLPerf Tiny's keyword-spotting DS-CNN, as ExecuTorch's own wheel defines it, in the
forms its benchmarks run, with an input and eager PyTorch's output for it.

The network (depthwise-separable convolutions, batch norm, average pooling; 1 x 1 x 49 x 10
in, 12 classes out) comes from ``executorch.examples.models.mlperf_tiny``: a published
architecture nobody here wrote. Its weights are untrained and seeded; batch norm's statistics
come from a few random batches (left at their defaults, the activations shrink until the
output is the classifier's bias whatever the input). Written to --out:

    kws.pte, kws_xnnpack.pte   ExecuTorch programs, portable kernels and lowered to XNNPACK
    kws.pt2                    a torch.export archive               (--forms export)
    kws.onnx                   ONNX, by torch's exporter            (--forms onnx)
    x.npy, y.npy               an input and eager PyTorch's output for it

    python specifications/models/make_kws.py --out DIR [--forms executorch export onnx]

Nothing is committed: the tests and perf/executorch.py make it when they run (needs:
executorch, which brings torch).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FORMS = ("executorch", "export", "onnx")


def network() -> tuple[Any, Any]:
    """The seeded network, its batch norm calibrated, and its example input."""
    import torch
    from executorch.examples.models.mlperf_tiny import DSCNNKWSModel

    torch.manual_seed(3)
    model = DSCNNKWSModel()
    net = model.get_eager_model()
    (example,) = model.get_example_inputs()
    for layer in net.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = None  # a plain average over the batches
            layer.reset_running_stats()
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(32, 1, 49, 10) * 2 - 1)
        net.eval()
        if (net(example) - net.classifier.bias).abs().max() <= 0.1:
            raise SystemExit("the calibrated network's output still ignores its input")
    return net, example


def write(out: Path, forms: tuple[str, ...]) -> None:
    import numpy as np
    import torch

    net, example = network()
    exported = torch.export.export(net, (example,))
    if "executorch" in forms:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        for name, partitioners in (("kws.pte", []), ("kws_xnnpack.pte", [XnnpackPartitioner()])):
            lowered = to_edge_transform_and_lower(exported, partitioner=partitioners)
            (out / name).write_bytes(lowered.to_executorch().buffer)
    if "export" in forms:
        torch.export.save(exported, str(out / "kws.pt2"))
    if "onnx" in forms:
        torch.onnx.export(
            net, (example,), str(out / "kws.onnx"), dynamo=False, input_names=["x"],
            output_names=["y"],
        )  # fmt: skip
    np.save(out / "x.npy", example.numpy())
    with torch.no_grad():
        np.save(out / "y.npy", net(example).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write")
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=["executorch"])
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    write(options.out, tuple(options.forms))


if __name__ == "__main__":
    main()
