"""Stands in for ExecuTorch's executor_runner (its examples/portable/executor_runner), which is
not built here: it takes the binary's flags, runs the program with ExecuTorch's own runtime (the
Python bindings of the same C++ runtime), and logs what the binary logs, in ET_LOG's format, to
stderr. Inputs are raw files (--inputs), else ones, as in the binary; outputs are written raw
to <--output_file>-<i>.bin; --etdump_path writes the runtime's ETDump. A test runs it with its
own interpreter on the first line."""

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from executorch.extension.pybindings import portable_lib
from executorch.runtime import Runtime

DTYPES = {3: torch.int32, 4: torch.int64, 6: torch.float32}  # the runtime's ScalarType codes


def log(message: str) -> None:
    seconds = time.monotonic()
    clock = f"{int(seconds // 3600) % 100:02d}:{int(seconds // 60) % 60:02d}:{seconds % 60:09.6f}"
    print(f"I {clock} executorch:executor_runner.cpp:0] {message}", file=sys.stderr)


flags = argparse.ArgumentParser()
for flag in ("model_path", "data_path", "inputs", "output_file", "etdump_path"):
    flags.add_argument(f"--{flag}", default="")
flags.add_argument("--num_executions", type=int, default=1)
flags.add_argument("--cpu_threads", type=int, default=-1)
args = flags.parse_args()

threads = args.cpu_threads if args.cpu_threads != -1 else os.cpu_count() or 1
log(f"Resetting threadpool with num threads = {threads}")
portable_lib._unsafe_reset_threadpool(threads)

before_load = time.perf_counter_ns()
program = Runtime.get().load_program(
    Path(args.model_path), enable_etdump=bool(args.etdump_path), data_path=args.data_path or None
)
method = program.load_method("forward")
log(f"Model loaded in {(time.perf_counter_ns() - before_load) / 1e6:f} ms.")

files = args.inputs.split(",") if args.inputs else []
inputs = []
for index in range(method.metadata.num_inputs()):
    meta = method.metadata.input_tensor_meta(index)
    dtype, sizes = DTYPES[int(meta.dtype())], list(meta.sizes())
    if index < len(files):
        data = bytearray(Path(files[index]).read_bytes())
        inputs.append(torch.frombuffer(data, dtype=dtype).reshape(sizes))
    else:
        inputs.append(torch.ones(sizes, dtype=dtype))

spent = 0
for execution in range(args.num_executions):
    start = time.perf_counter_ns()
    outputs = method.execute(inputs)
    elapsed = time.perf_counter_ns() - start
    spent += elapsed
    log(f"Iteration {execution + 1} of {args.num_executions}: {elapsed / 1e6:f} ms")
log(f"Model executed successfully {args.num_executions} time(s) in {spent / 1e6:f} ms.")
log(f"{len(outputs)} outputs: ")
for index, output in enumerate(outputs):
    if args.output_file:
        Path(f"{args.output_file}-{index}.bin").write_bytes(output.numpy().tobytes())
    print(f"OutputX {index}: tensor(sizes={list(output.shape)}, {output.flatten().tolist()})")
if args.etdump_path:
    program.write_etdump_result_to_file(args.etdump_path, args.etdump_path + ".debug")
