"""``--aibench-backend``: the names it takes, and what a benchmark program is told for each.

In-process runners map a name to their own switch (ONNX Runtime an execution provider, LiteRT
the XNNPACK delegate, PyTorch oneDNN or CUDA, ExecuTorch the programs lowered to a delegate)
and skip an item they have no switch for. A
program is told on its command line: ``benchmark_model`` by its delegate flag, any other
program as FAI-PEP's harness told it, ``--backend NAME`` after each command that runs
``{program}`` (Caffe2's ``speed_benchmark`` reads it: eigen, mkl, nnpack, opengl, cuda...).
"""

from __future__ import annotations

DEFAULT = "cpu"

# ONNX Runtime's execution providers, and the names that other in-process runners share
IN_PROCESS = (
    "cpu",
    "cuda",
    "onednn",
    "xnnpack",
    "tensorrt",
    "openvino",
    "coreml",
    "nnapi",
    "qnn",
    "dnnl",
    "rocm",
    "directml",
)

# benchmark_model's delegates, each switched on by its flag
LITERT_DELEGATE_FLAGS = {
    "xnnpack": "--use_xnnpack=true",
    "gpu": "--use_gpu=true",
    "nnapi": "--use_nnapi=true",
    "hexagon": "--use_hexagon=true",
    "coreml": "--use_coreml=true",
}

# ExecuTorch's delegates, by the name its runtime registers each under (a program is lowered to
# them when exported: the runner chooses programs by them, not kernels)
EXECUTORCH_DELEGATES = {
    "xnnpack": "XnnpackBackend",
    "qnn": "QnnBackend",
    "openvino": "OpenvinoBackend",
    "coreml": "CoreMLBackend",
    "vulkan": "VulkanBackend",
    "mps": "MPSBackend",
}

# libraries FAI-PEP's --backend named for Caffe2 and PyTorch programs
PROGRAM_LIBRARIES = ("eigen", "mkl", "nnpack", "opengl", "vulkan", "metal")

BACKENDS = tuple(
    dict.fromkeys([*IN_PROCESS, *LITERT_DELEGATE_FLAGS, *EXECUTORCH_DELEGATES, *PROGRAM_LIBRARIES])
)


def program_arguments(backend: str) -> list[str]:
    """What FAI-PEP's harness appended to a program's command for ``--backend``; nothing for
    the CPU, which is every program's default."""
    return [] if backend == DEFAULT else ["--backend", backend]
