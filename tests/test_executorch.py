"""ExecuTorch: the repository's programs, a convolutional network exported here and MLPerf
Tiny's keyword-spotting network from ExecuTorch's own wheel, each with and without the XNNPACK
delegate (through ExecuTorch's own exporter); the runner binary on boards and phones; the
profile, log and results-file readers."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytest import Pytester

from pytest_aibench.parsers.etdump import DISPATCH, ProfileEvent, operators_from_events
from pytest_aibench.parsers.executor_runner import parse_executor_runner
from pytest_aibench.records import ItemRecord

from . import adbd, sshd
from .helpers import generic_spec, metrics_of, write_json, write_program, written_run

MODELS = Path(__file__).resolve().parents[1] / "specifications/models"


def test_a_profile_gives_each_operator_its_own_time() -> None:
    # two runs: a portable kernel inside its dispatch, a delegated block of two operators
    events = [
        ProfileEvent("native_call_addmm.out", [10.0, 12.0]),
        ProfileEvent("OPERATOR_CALL", [11.0, 13.5]),
        ProfileEvent("native_call_addmm.out", [4.0, 4.0]),
        ProfileEvent("OPERATOR_CALL", [4.5, 4.5]),
        ProfileEvent("Convolution (NHWC, F32) IGEMM #1", [30.0, 31.0], delegated=True),
        ProfileEvent("Transpose (ND, X32) #1", [5.0, 5.0], delegated=True),
        ProfileEvent("DELEGATE_CALL", [36.0, 37.0]),
        ProfileEvent("Method::execute", [52.0, 56.0]),
    ]
    profile = operators_from_events(events, ["XnnpackBackend"])
    operators = {op.name: op for op in profile.operators}
    assert operators["addmm.out"].values == [10.0, 12.0]
    assert operators["addmm.out #2"].type == "addmm.out"
    assert operators[DISPATCH].values == [1.5, 2.0]  # each OPERATOR_CALL less its kernel
    conv = operators["XnnpackBackend: Convolution (NHWC, F32) IGEMM #1"]
    assert conv.type == "Convolution (NHWC, F32) IGEMM" and conv.values == [30.0, 31.0]
    assert operators["XnnpackBackend delegate call"].values == [1.0, 1.0]
    assert profile.execute_mean == 54.0
    own = [math.fsum(op.values[run] for op in profile.operators) for run in range(2)]
    assert own == [51.5, 55.0]  # nothing counted twice: within each run's Method::execute


def needs_executorch() -> None:
    """Skip without ExecuTorch (found, not imported: its import warns, and warnings are errors
    in this suite; the runner imports it with its own warnings ignored)."""
    if importlib.util.find_spec("executorch") is None:
        pytest.skip("executorch is not installed: pip install 'pytest-aibench[executorch]'")


def run_file_item(pytester: Pytester, spec: Path, *options: str) -> ItemRecord:
    result = pytester.runpytest(f"--aibench-spec={spec}", "--aibench-json=run.json", *options)
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    return item


@pytest.mark.parametrize(
    ("spec", "delegates"),
    [("mlp.json", []), ("mlp_xnnpack.json", ["XnnpackBackend"])],
)
def test_the_repository_programs_run_with_their_golden_and_delegates(
    pytester: Pytester, spec: str, delegates: list[str]
) -> None:
    needs_executorch()
    item = run_file_item(pytester, MODELS / "executorch/mlp" / spec)
    metrics = metrics_of(item)
    assert len(metrics["NET latency"]["values"]) == 200
    assert metrics["y max_abs_error"]["values"][0] < 1e-5
    for cold in ("NET load", "NET first_inference", "NET peak_memory"):
        assert len(metrics[cold]["values"]) == 1, cold
    assert item["extra"]["executorch"]["delegates"] == delegates
    assert item["extra"]["executorch"]["num_threads"] >= 1
    assert item["operators"], "the ETDump profile gave no operators"


EXPORT = """
import sys, torch
from executorch.exir import to_edge_transform_and_lower
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
import numpy as np
{build}
exported = torch.export.export(net, (x,))
for suffix, partitioners in (("", []), ("_xnnpack", [XnnpackPartitioner()])):
    program = to_edge_transform_and_lower(exported, partitioner=partitioners).to_executorch()
    open(f"{stem}{{suffix}}.pte", "wb").write(program.buffer)
np.save("x.npy", x.numpy())
with torch.no_grad():
    np.save("y.npy", net(x).numpy())
"""

CONV = """
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.down = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.down(torch.relu(self.stem(x))))
        return self.head(x.mean(dim=(2, 3)))

net = Net().eval()
x = torch.randn(1, 3, 24, 24, generator=torch.Generator().manual_seed(5))
"""


def export_pair(folder: Path, stem: str, build: str) -> Path:
    """``stem.pte`` and ``stem_xnnpack.pte`` of a network, exported by ExecuTorch's exporter,
    with an input and eager PyTorch's output for it as ``x.npy`` and ``y.npy``."""
    needs_executorch()
    (folder / "export.py").write_text(EXPORT.format(build=build, stem=stem))
    made = subprocess.run(
        [sys.executable, "export.py"], cwd=folder, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr[-2000:]
    return folder


@pytest.fixture(scope="module")
def exported_conv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The network exported once for the module (ExecuTorch's exporter takes seconds)."""
    return export_pair(tmp_path_factory.mktemp("conv"), "conv", CONV)


@pytest.fixture
def conv_programs(pytester: Pytester, exported_conv: Path) -> Path:
    """A convolutional network exported here (ExecuTorch's exporter, eager PyTorch's golden
    output), portable and lowered to XNNPACK, and a spec for each."""
    return program_specs(pytester, exported_conv, "conv")


def program_specs(pytester: Pytester, exported: Path, stem: str) -> Path:
    """The pair of programs of ``export_pair`` in pytester's folder, with a spec each."""
    for name in (f"{stem}.pte", f"{stem}_xnnpack.pte", "x.npy", "y.npy"):
        shutil.copyfile(exported / name, pytester.path / name)
    for program in (stem, f"{stem}_xnnpack"):
        write_json(
            pytester.path / f"{program}.json",
            {
                "model": {
                    "name": program,
                    "format": "executorch",
                    "files": {
                        "model": {"filename": f"{program}.pte", "location": f"{program}.pte"}
                    },
                },
                "tests": [
                    {
                        "identifier": "golden",
                        "metric": "delay",
                        "warmup": 2,
                        "iter": 20,
                        "input_files": {"x": {"filename": "x.npy", "location": "x.npy"}},
                        "golden_files": {"y": {"filename": "y.npy", "location": "y.npy"}},
                        "tolerance": {"atol": 1e-4},
                    }
                ],
            },
        )
    return pytester.path


def test_a_conv_network_matches_eager_pytorch_with_and_without_xnnpack(
    pytester: Pytester, conv_programs: Path
) -> None:
    portable = run_file_item(pytester, conv_programs / "conv.json")
    lowered = run_file_item(pytester, conv_programs / "conv_xnnpack.json")
    for item in (portable, lowered):
        assert metrics_of(item)["y max_abs_error"]["values"][0] < 1e-4
        assert item["extra"]["inputs"]["x"]["source"].startswith("file")
    assert portable["extra"]["backend"]["delegates"] == ["none (portable kernels)"]
    assert set(lowered["extra"]["executorch"]["delegates"]) == {"XnnpackBackend"}
    kernels = {op["type"] for op in portable["operators"]}
    assert "convolution.out" in kernels
    delegated = [op for op in lowered["operators"] if op["name"].startswith("XnnpackBackend: ")]
    assert delegated and any("Convolution" in op["type"] for op in delegated)
    # the delegate's clock reads in the runtime's unit: its convolutions hold a real share of
    # the execution (read in ns as us they would hold a thousandth), and no time counts twice
    assert sum(op["share"] or 0.0 for op in delegated if "Convolution" in op["type"]) > 0.05
    assert sum(op["share"] or 0.0 for op in lowered["operators"]) <= 1.0 + 1e-9


def test_a_published_network_from_executorchs_wheel_matches_eager_pytorch(
    pytester: Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    exported = tmp_path_factory.mktemp("kws")
    script = MODELS / "make_kws.py"
    made = subprocess.run(
        [sys.executable, str(script), "--out", str(exported)], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr[-2000:]
    folder = program_specs(pytester, exported, "kws")
    portable = run_file_item(pytester, folder / "kws.json")
    lowered = run_file_item(pytester, folder / "kws_xnnpack.json")
    for item in (portable, lowered):
        assert metrics_of(item)["y max_abs_error"]["values"][0] < 1e-4
        assert len(metrics_of(item)["NET latency"]["values"]) == 20
    assert "convolution.out" in {op["type"] for op in portable["operators"]}
    assert set(lowered["extra"]["executorch"]["delegates"]) == {"XnnpackBackend"}
    assert any(op["name"].startswith("XnnpackBackend: ") for op in lowered["operators"])


def test_a_backend_the_program_was_not_lowered_to_skips_with_what_it_has(
    pytester: Pytester, conv_programs: Path
) -> None:
    result = pytester.runpytest("--aibench-spec=conv.json", "--aibench-backend=xnnpack", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*--aibench-backend xnnpack: ExecuTorch fixes delegates when a program is lowered, "
            "and this one has no delegate (portable kernels)*"
        ]
    )
    lowered = pytester.runpytest("--aibench-spec=conv_xnnpack.json", "--aibench-backend=xnnpack")
    lowered.assert_outcomes(passed=1)


def test_the_pair_runs_ab_through_a_control_root(pytester: Pytester, conv_programs: Path) -> None:
    base = conv_programs / "base"
    base.mkdir()
    for name in ("conv_xnnpack.pte", "x.npy", "y.npy"):
        (base / name).write_bytes((conv_programs / name).read_bytes())
    result = pytester.runpytest(
        "--aibench-spec=conv_xnnpack.json",
        "--aibench-ab-control-root=base",
        "--aibench-ab-min-effect=20%",  # a set-up check, not a measurement: decided early
        "--aibench-json=run.json",
    )
    result.assert_outcomes(passed=1)
    (item,) = json.loads((conv_programs / "run.json").read_text())["items"]
    assert item["verdicts"][0]["status"] == "unchanged"
    sides = item["extra"]["ab"]["sides"]
    assert sides["control"]["threads"] == sides["treatment"]["threads"] >= 1
    assert np.isfinite(item["verdicts"][0]["low"])


def test_a_run_exports_to_the_pytorch_oss_benchmark_records_with_every_sample(
    pytester: Pytester,
) -> None:
    needs_executorch()
    spec = MODELS / "executorch/mlp/mlp_xnnpack.json"
    result = pytester.runpytest(f"--aibench-spec={spec}", "--aibench-pytorch-json=oss.json")
    result.assert_outcomes(passed=1)
    records = json.loads((pytester.path / "oss.json").read_text())
    latency = next(r for r in records if r["metric"]["name"] == "NET latency(us)")
    assert len(latency["metric"]["benchmark_values"]) == 200
    assert latency["model"] == {
        "name": "mlp",
        "type": "executorch",
        "backend": "cpu (XnnpackBackend)",
        "extra_info": {
            "test": "xnnpack-golden",
            "md5": {"model": "fb106aac78cecbcdd91ba6b36eb1e426"},
        },
    }
    assert latency["runners"][0]["type"] == "host"
    assert {"benchmark", "model", "metric", "runners"} <= set(latency)
    assert all(record["benchmark"]["name"] == "pytest-aibench" for record in records)


APP_RESULTS = """#!/usr/bin/env python3
# Writes benchmark_results.json as ExecuTorch's Android benchmark app does (a JSON list of
# its BenchmarkMetric objects), for one model lowered to XNNPACK.
import json, sys
device = {"device": "google", "arch": "Pixel 8", "os": "Android 14",
          "totalMem": 8000000000, "availMem": 3000000000}
model = {"name": "mv3", "backend": "xnnpack", "quantization": "q8"}
rows = [("avg_inference_latency(ms)", 12.5), ("trimmean_inference_latency(ms)", 12.1),
        ("model_load_time(ms)", 40.0), ("load_status", 0.0), ("ram_pss_usage(mb)", 31.5)]
entries = [{"benchmarkModel": model, "metric": m, "actualValue": v, "targetValue": 0.0,
            "deviceInfo": device} for m, v in rows]
open(sys.argv[1], "w").write(json.dumps(entries))
"""


def test_the_benchmark_apps_results_file_is_read_as_a_programs_output(
    pytester: Pytester,
) -> None:
    write_program(pytester.path / "app.py", APP_RESULTS)
    results = {"filename": "benchmark_results.json", "location": "{TGTDIR}/benchmark_results.json"}
    spec = generic_spec(
        "app",
        tests=[
            {
                "identifier": "mv3",
                "metric": "delay",
                "output_files": {"results": results},
                "commands": ["{files.program} {output_files.results}"],
            }
        ],
    )
    spec["model"]["files"] = {"program": {"filename": "app.py", "location": "app.py"}}
    write_json(pytester.path / "app.json", spec)
    result = pytester.runpytest("--aibench-spec=app.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    metrics = metrics_of(item)
    latency = metrics["mv3_xnnpack_q8 avg_inference_latency"]
    assert latency["unit"] == "ms" and latency["values"] == []  # one value, no samples
    assert latency["summary"]["mean"] == 12.5
    assert metrics["mv3_xnnpack_q8 ram_pss_usage"]["unit"] == "mb"
    assert metrics["mv3_xnnpack_q8 load_status"]["summary"]["mean"] == 0.0
    app = item["extra"]["executorch_benchmark"]
    assert app["models"] == [{"name": "mv3", "backend": "xnnpack", "quantization": "q8"}]
    assert app["device"]["os"] == "Android 14"


def test_a_file_that_is_no_program_fails_its_item_saying_so(pytester: Pytester) -> None:
    needs_executorch()
    (pytester.path / "broken.pte").write_bytes(b"not a flatbuffer at all")
    spec = {
        "model": {
            "name": "broken",
            "format": "executorch",
            "files": {"model": {"filename": "broken.pte", "location": "broken.pte"}},
        },
        "tests": [{"identifier": "t", "metric": "delay", "iter": 2}],
    }
    write_json(pytester.path / "broken.json", spec)
    result = pytester.runpytest("--aibench-spec=broken.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*broken.pte is no ExecuTorch program*"])


def test_the_runner_binarys_log_gives_samples_less_warmups_or_its_mean() -> None:
    log = [
        "I 00:00:00.000021 executorch:executor_runner.cpp:262] Resetting threadpool with num "
        "threads = 4",
        "I 00:00:00.000193 executorch:executor_runner.cpp:290] Model loaded in 1.250000 ms.",
        *(
            f"I 00:00:00.00{i}500 executorch:executor_runner.cpp:501] Iteration {i} of 4: "
            f"{value:f} ms"
            for i, value in enumerate([0.9, 0.02, 0.021, 0.019], start=1)
        ),
        "I 00:00:00.004900 executorch:executor_runner.cpp:530] Model executed successfully 4 "
        "time(s) in 0.960000 ms.",
    ]
    parsed = parse_executor_runner(log, warmup=1)
    assert parsed is not None and parsed.executions == 4 and parsed.warmup_left_out == 1
    assert parsed.threads == 4
    assert parsed.records["NET latency"].values == pytest.approx([20.0, 21.0, 19.0])
    assert parsed.records["NET load"].values == [1250.0]
    # builds that log the total only: the tool's mean over every execution, no samples
    older = parse_executor_runner([log[-1].replace("0.960000", "2.000000")], warmup=1)
    assert older is not None and older.records["NET latency"].summary == {
        "mean": 500.0,
        "p50": None,
    }
    assert older.records["NET latency"].num_runs == 4 and "NET load" not in older.records
    assert parse_executor_runner(log[:-1], warmup=0) is None  # it never said it finished
    with pytest.raises(ValueError, match="all of them warm-ups"):
        parse_executor_runner(log, warmup=4)


def runner_spec(pytester: Pytester, commands: list[str] | None) -> list[str]:
    """The repository's XNNPACK MLP run by the runner binary (a stand-in: see its file), with
    its golden input as raw bytes; the pytest options that pass the binary."""
    for name, folder in (("mlp_xnnpack.pte", "executorch/mlp"), ("y.npy", "golden/mlp")):
        shutil.copyfile(MODELS / folder / name, pytester.path / name)
    x = np.load(MODELS / "golden/mlp/x.npy").astype(np.float32)
    (pytester.path / "x.bin").write_bytes(x.tobytes())
    stand_in = (Path(__file__).parent / "data/stand_in_executor_runner.py").read_text()
    write_program(pytester.path / "executor_runner", f"#!{sys.executable}\n{stand_in}")
    test: dict[str, object] = {"identifier": "runner", "metric": "delay", "warmup": 3, "iter": 20}
    if commands is not None:
        test |= {
            "input_files": {"x": {"filename": "x.bin", "location": "x.bin"}},
            "golden_files": {"y": {"filename": "y.npy", "location": "y.npy"}},
            "output_files": {
                "y": {"filename": "y-0.bin", "location": "{TGTDIR}/y-0.bin"},
                "profile": {"filename": "run.etdump", "location": "{TGTDIR}/run.etdump"},
            },
            "commands": commands,
        }
    model = {"filename": "mlp_xnnpack.pte", "location": "mlp_xnnpack.pte"}
    spec = {
        "model": {"name": "mlp", "format": "executorch", "files": {"model": model}},
        "tests": [test],
    }
    write_json(pytester.path / "runner.json", spec)
    return ["--aibench-spec=runner.json", "--aibench-program=executor_runner"]


RUNNER_COMMAND = (
    "{program} --model_path={files.model} --num_executions={executions} "
    "--inputs={input_files.x} --output_file={TGTDIR}/y --etdump_path={output_files.profile}"
)


@pytest.fixture(params=["ssh", "android"])
def board(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A Linux board (a real OpenSSH server on loopback) or an Android phone (a real adb server
    and tests/adbd.py's daemon): its kind and the pytest options that reach it."""
    if request.param == "ssh":
        if not sshd.available():
            pytest.skip("OpenSSH server not installed")
        with sshd.servers(tmp_path / "sshd", 1) as (urls, options):
            yield "ssh", [f"--aibench-devices={urls[0]}", f"--aibench-ssh-options={options}"]
        return
    pytest.importorskip("adbutils")
    with adbd.adb_server(tmp_path / "adbhome") as port:
        daemon = adbd.FakeAdbd(tmp_path / "phone")
        adbd.connect(port, daemon)
        try:
            yield "android", ["--aibench-devices=android", f"--aibench-adb-port={port}"]
        finally:
            daemon.stop()


def test_the_runner_binary_runs_on_a_board_with_golden_and_operators(
    pytester: Pytester, board: tuple[str, list[str]]
) -> None:
    needs_executorch()
    kind, board_options = board
    options = runner_spec(pytester, [RUNNER_COMMAND])
    result = pytester.runpytest(*options, *board_options, "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    assert item["device"] is not None and item["device"]["kind"] == kind
    metrics = metrics_of(item)
    assert len(metrics["NET latency"]["values"]) == 20  # 23 executions, the 3 warm-ups left out
    ran = item["extra"]["executorch"]
    assert (ran["executions"], ran["warmup_left_out"]) == (23, 3)
    assert metrics["y max_abs_error"]["values"][0] < 1e-5  # the raw output, read as the golden
    assert len(metrics["NET load"]["values"]) == 1
    assert item["extra"]["backend"]["delegates"] == ["XnnpackBackend"]  # read here, from the file
    delegated = [op for op in item["operators"] if op["name"].startswith("XnnpackBackend")]
    assert delegated, "the runner's ETDump gave no delegated operators"


def test_a_runner_binary_without_commands_is_told_executions_and_threads(
    pytester: Pytester,
) -> None:
    needs_executorch()
    options = runner_spec(pytester, None)
    spec = json.loads((pytester.path / "runner.json").read_text())
    spec["tests"][0]["executorch"] = {"num_threads": 1}
    write_json(pytester.path / "runner.json", spec)
    result = pytester.runpytest(*options, "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    assert len(metrics_of(item)["NET latency"]["values"]) == 20
    assert item["extra"]["executorch"]["executions"] == 23
    assert item["extra"]["executorch"]["num_threads"] == 1  # --cpu_threads, as the binary said
    refused = pytester.runpytest(*options, "--aibench-backend=qnn", "-rs")
    refused.assert_outcomes(skipped=1)
    refused.stdout.fnmatch_lines(["*--aibench-backend qnn*this one has XnnpackBackend*"])
