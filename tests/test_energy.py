"""Energy and power: the trace analysis on traces whose answer is known, and each source end to
end (a fake Monsoon package at the library's API, a fake powercap tree, the adb test daemon
serving an Android phone's fuel gauge)."""

import gzip
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import CaptureFixture, MonkeyPatch, Pytester

from pytest_aibench.energy.rapl import RaplSource
from pytest_aibench.energy.trace import Trace, analyse
from pytest_aibench.errors import DeviceError

from . import adbd
from .helpers import write_json, write_program

FAKES = Path(__file__).parent / "fakes"
RATE = 5000

Meter = Callable[[np.ndarray], None]  # plays a current trace (mA, RATE Hz) on the fake meter


def synthetic_current(
    idle_ma: float = 120.0,
    busy_ma: float = 620.0,
    start: float = 2.0,
    end: float = 6.0,
    total: float = 8.0,
    noise: float = 15.0,
    spike: bool = True,
    seed: int = 3,
) -> np.ndarray:
    """Idle, a benchmark window, idle again; Gaussian noise and one 5 A spike."""
    t = np.arange(0, total, 1 / RATE)
    current: np.ndarray = np.where((t >= start) & (t < end), busy_ma, idle_ma)
    current = current + np.random.default_rng(seed).normal(0, noise, len(t))
    if spike:
        current[int((start + end) / 2 * RATE)] = 5000.0
    return current


def recorded_shape_current(seed: int = 5) -> np.ndarray:
    """Shaped like a phone's: a slow idle drift, a ramp into the benchmark, per-inference
    ripple (10 ms period) while it runs, a tail as clocks wind down."""
    t = np.arange(0, 10, 1 / RATE)
    idle = 150 + 10 * np.sin(2 * np.pi * t / 7)
    busy = (t >= 3) & (t < 7)
    ripple = 80 * (np.sin(2 * np.pi * t / 0.01) > 0)
    current = idle + busy * (450 + ripple)
    return current + np.random.default_rng(seed).normal(0, 20, len(t))


def expected_energy_per_inference(
    current: np.ndarray, volts: float, start: float, end: float, iterations: int
) -> float:
    """mJ: (window power - baseline after it) x window length / iterations."""
    window = slice(int(start * RATE), int(end * RATE))
    power = current * volts
    return float((power[window].mean() - power[window.stop :].mean()) * (end - start) / iterations)


@pytest.mark.parametrize("shape", ["synthetic", "recorded"])
def test_energy_per_inference_of_a_known_trace_is_within_one_percent(shape: str) -> None:
    current = synthetic_current() if shape == "synthetic" else recorded_shape_current()
    start, end = (2.0, 6.0) if shape == "synthetic" else (3.0, 7.0)
    trace = Trace(np.arange(len(current)) / RATE, current * 4.2)
    result = analyse(trace, iterations=400)
    known = expected_energy_per_inference(current, 4.2, start, end, 400)
    assert result.energy_mj == pytest.approx(known, rel=0.01)
    assert result.window_seconds == pytest.approx(end - start, abs=0.01)
    assert result.latency_ms == pytest.approx((end - start) * 1000 / 400, rel=0.01)


@pytest.mark.parametrize("noise", [0.0, 30.0])
def test_a_trace_where_the_benchmark_does_not_show_is_refused(noise: float) -> None:
    flat = 500 + np.random.default_rng(1).normal(0, noise, 5 * RATE)
    with pytest.raises(ValueError, match="the benchmark does not show"):
        analyse(Trace(np.arange(len(flat)) / RATE, flat), 10)


def fake_powercap(root: Path, zones: dict[str, tuple[int, int]]) -> Path:
    """intel-rapl:N zones with (energy_uj, max_energy_range_uj), plus a sub-zone that must not
    be counted twice."""
    for name, (energy, maximum) in zones.items():
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "name").write_text("package-" + name[-1])
        (folder / "energy_uj").write_text(str(energy))
        (folder / "max_energy_range_uj").write_text(str(maximum))
    sub = root / "intel-rapl:0:0"
    sub.mkdir()
    (sub / "energy_uj").write_text("5")
    (sub / "max_energy_range_uj").write_text("1000000")
    return root


def test_rapl_energy_matches_the_counters_across_a_wrap(tmp_path: Path) -> None:
    root = fake_powercap(
        tmp_path / "powercap",
        {"intel-rapl:0": (999_000, 1_000_000), "intel-rapl:1": (10, 1_000_000)},
    )
    source = RaplSource(root, interval=0.005)
    source.start()
    # The package counter wraps: 999000 -> 1000000 = 0 -> 4000 (5000 uJ), the other adds 2500.
    (root / "intel-rapl:0/energy_uj").write_text("4000")
    (root / "intel-rapl:1/energy_uj").write_text("2510")
    (root / "intel-rapl:0:0/energy_uj").write_text("999999")
    trace = source.stop()
    assert trace.energy_mj() == pytest.approx(7.5, rel=1e-9)  # 7500 uJ
    assert trace.duration() > 0


def test_no_rapl_counters_is_a_clear_skip_reason(tmp_path: Path) -> None:
    from pytest_aibench.errors import Unsupported

    with pytest.raises(Unsupported, match="no RAPL energy counters under"):
        RaplSource(tmp_path)


# -- Monsoon, through the fake package ----------------------------------------------------------


@pytest.fixture
def meter(tmp_path: Path, monkeypatch: MonkeyPatch) -> Meter:
    """A fake Monsoon meter on the import path, playing a trace the test chooses."""
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m.split(".")[0] == "Monsoon"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("FAKE_MONSOON_SERIALS", "20417")

    def play(current: np.ndarray) -> None:
        np.save(tmp_path / "trace.npy", current)
        monkeypatch.setenv("FAKE_MONSOON_TRACE", str(tmp_path / "trace.npy"))

    return play


def test_the_monsoon_path_gives_energy_within_one_percent(
    meter: Meter,
) -> None:
    from pytest_aibench.energy.monsoon import MonsoonSource

    current = synthetic_current()
    meter(current)
    source = MonsoonSource(collection_time=8.0, voltage=4.2, serial=20417)
    source.start()
    trace = source.stop()
    assert len(trace) == 8 * RATE
    result = analyse(trace, iterations=400)
    assert result.energy_mj == pytest.approx(
        expected_energy_per_inference(current, 4.2, 2.0, 6.0, 400), rel=0.01
    )


def test_a_missing_meter_is_a_clear_error_not_an_empty_result(
    meter: Meter, monkeypatch: MonkeyPatch, capsys: CaptureFixture[str]
) -> None:
    from pytest_aibench.energy.monsoon import MonsoonSource

    meter(synthetic_current())
    monkeypatch.setenv("FAKE_MONSOON_SERIALS", "")
    with pytest.raises(
        DeviceError,
        match=r"no Monsoon HVPM power monitor found \(a meter "
        r"wanted; connected: none\)",
    ):
        MonsoonSource(collection_time=1.0)
    monkeypatch.setenv("FAKE_MONSOON_SERIALS", "111")
    with pytest.raises(DeviceError, match=r"meter 20417 wanted; connected: 111"):
        MonsoonSource(collection_time=1.0, serial=20417)


TFLITE_POWER: dict[str, Any] = {  # the shape of FAI-PEP's squeezenet_1_thread_power.json (tflite)
    "model": {
        "category": "CNN",
        "format": "tflite",
        "name": "squeezenet_power",
        "files": {"graph": {"filename": "squeezenet.tflite", "location": "squeezenet.tflite"}},
    },
    "tests": [
        {
            "commands": [
                "{program} --graph={files.graph} --warmup_runs={warmup} "
                "--num_runs={iter} --input_layer=Placeholder "
                '--input_layer_shape="1,224,224,3" --num_threads=1'
            ],
            "identifier": "squeezenet-1-thread",
            "platform_args": {"sleep_before_run": 0.2},
            "collection_time": 2.0,
            "voltage": 4.2,
            "iter": 400,
            "metric": "power",
            "warmup": 0,
        }
    ],
}

CAFFE2_POWER: dict[
    str, Any
] = {  # the shape of FAI-PEP's caffe2 *_power.json, with the monsoon object
    "model": {
        "format": "caffe2",
        "name": "squeezenet_power",
        "kind": "deployment",
        "files": {
            "init": {"filename": "init_net.pb", "location": "init_net.pb"},
            "predict": {"filename": "predict_net.pb", "location": "predict_net.pb"},
        },
    },
    "tests": [
        {
            "commands": [
                "{program} --net {files.predict} --init_net {files.init} --warmup "
                '{warmup} --iter {iter} --input "data" --input_dims "1,3,224,224" '
                "--input_type float"
            ],
            "identifier": "squeezenet_power",
            "iter": 400,
            "metric": "power",
            "warmup": 1,
            "method": "monsoon_with_usb",
            "monsoon": {"collection_time": 2.0, "voltage": 4.2},
        }
    ],
}

QUIET_PROGRAM = "#!/usr/bin/env python3\nimport time\ntime.sleep(0.3)\n"


@pytest.mark.parametrize("spec", [TFLITE_POWER, CAFFE2_POWER], ids=["tflite", "caffe2"])
def test_fai_pep_power_specs_produce_power_records_with_a_meter(
    pytester: Pytester, meter: Meter, spec: dict[str, Any]
) -> None:
    current = synthetic_current(start=0.5, end=1.5, total=2.0, spike=False)
    meter(current)
    for ref in spec["model"]["files"].values():
        (pytester.path / ref["filename"]).write_bytes(b"model")
    write_json(pytester.path / "power.json", spec)
    write_program(pytester.path / "bench", QUIET_PROGRAM)
    result = pytester.runpytest(
        "--aibench-spec=power.json",
        "--aibench-program=bench",
        "--aibench-json=run.json",
        "--aibench-traces=traces",
    )
    result.assert_outcomes(passed=1)
    item = json.loads((pytester.path / "run.json").read_text())["items"][0]
    records = {m["metric"]: m for m in item["metrics"]}
    assert {"window_power", "baseline_power", "power", "energy", "latency"} <= set(records)
    known = expected_energy_per_inference(current, 4.2, 0.5, 1.5, 400)
    assert records["energy"]["values"][0] == pytest.approx(known, rel=0.01)
    assert records["energy"]["unit"] == "mJ"
    assert records["latency"]["values"][0] == pytest.approx(2.5, rel=0.01)  # 1 s / 400
    power = item["extra"]["power"][0]
    assert power["source"] == "monsoon" and power["samples"] == 2 * RATE
    assert power["window_s"] == pytest.approx([0.5, 1.5], abs=0.01)
    with gzip.open(power["trace"], "rt") as trace:
        assert trace.readline().strip() == "time_s,current_mA,voltage_V,power_mW"
        assert len(trace.readlines()) == 2 * RATE
    result.stdout.fnmatch_lines(["*NET energy*mJ*"])


def test_a_power_test_without_a_meter_fails_saying_so(
    pytester: Pytester, meter: Meter, monkeypatch: MonkeyPatch
) -> None:
    meter(synthetic_current())
    monkeypatch.setenv("FAKE_MONSOON_SERIALS", "")
    for ref in TFLITE_POWER["model"]["files"].values():
        (pytester.path / ref["filename"]).write_bytes(b"model")
    write_json(pytester.path / "power.json", TFLITE_POWER)
    write_program(pytester.path / "bench", QUIET_PROGRAM)
    result = pytester.runpytest("--aibench-spec=power.json", "--aibench-program=bench")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no Monsoon HVPM power monitor found*"])


# -- RAPL during ordinary tests, and in A/B verdicts --------------------------------------------

ENERGY_PROGRAM = """#!/usr/bin/env python3
# Each inference "draws" {microjoules} uJ from RAPL package 0, as a real one would.
import json, os, random, sys
iterations = int(sys.argv[sys.argv.index("--iter") + 1])
counter = sys.argv[sys.argv.index("--counter") + 1]
value = int(open(counter).read())
drawn = sum({microjoules} * random.uniform(0.99, 1.01) for _ in range(iterations))
open(counter + ".new", "w").write(str(int((value + drawn) % 10**9)))
os.replace(counter + ".new", counter)  # sysfs reads never see half a write
for i in range(iterations):
    print("AIBENCH " + json.dumps({{"type": "NET", "metric": "latency", "unit": "ms",
                                   "value": 5}}))
"""


def energy_spec(pytester: Pytester, root: Path) -> None:
    write_json(
        pytester.path / "energy.json",
        {
            "model": {"name": "net", "format": "generic"},
            "tests": [
                {
                    "identifier": "t",
                    "metric": "delay",
                    "iter": 20,
                    "warmup": 0,
                    "commands": [
                        f"{{program}} --iter {{iter}} --counter {root}/intel-rapl:0/energy_uj"
                    ],
                }
            ],
        },
    )


def test_energy_is_measured_next_to_latency_with_rapl(pytester: Pytester, tmp_path: Path) -> None:
    root = fake_powercap(tmp_path / "powercap", {"intel-rapl:0": (999_990_000, 10**9)})
    energy_spec(pytester, root)
    write_program(pytester.path / "prog.py", ENERGY_PROGRAM.format(microjoules=1000))
    result = pytester.runpytest(
        "--aibench-spec=energy.json",
        "--aibench-program=prog.py",
        "--aibench-energy",
        f"--aibench-rapl-root={root}",
        "--aibench-json=run.json",
    )
    result.assert_outcomes(passed=1)
    item = json.loads((pytester.path / "run.json").read_text())["items"][0]
    records = {m["metric"]: m for m in item["metrics"]}
    assert records["energy"]["values"][0] == pytest.approx(1.0, rel=0.011)  # mJ per run
    assert records["latency"]["values"] == [5.0] * 20
    assert item["extra"]["power"][0]["source"] == "rapl"


def test_an_ab_run_whose_treatment_draws_ten_percent_more_fails_on_energy(
    pytester: Pytester, tmp_path: Path
) -> None:
    root = fake_powercap(tmp_path / "powercap", {"intel-rapl:0": (0, 10**9)})
    energy_spec(pytester, root)
    write_program(pytester.path / "control.py", ENERGY_PROGRAM.format(microjoules=1000))
    write_program(pytester.path / "treatment.py", ENERGY_PROGRAM.format(microjoules=1100))
    result = pytester.runpytest(
        "--aibench-spec=energy.json",
        "--aibench-program=treatment.py",
        "--aibench-ab-control=control.py",
        "--aibench-energy",
        f"--aibench-rapl-root={root}",
        "--aibench-ab-blocks=6",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*A/B regression*", "*NET energy*"])


# -- Android: the fuel gauge over adb ------------------------------------------------------------

GAUGE_PROGRAM = """#!/usr/bin/env python3
# Draw 900 mA for 1 s (the phone idles at 100 mA), as the fuel gauge reports it.
import os, time
gauge = os.environ["GAUGE"]
def draw(microamps):  # atomically, as sysfs reads never see half a write
    open(gauge + ".new", "w").write(f"-{microamps}\\n")
    os.replace(gauge + ".new", gauge)
draw(900000)
time.sleep(1.0)
draw(100000)
"""


def test_android_fuel_gauge_sampled_over_adb_gives_the_benchmark_window(
    pytester: Pytester, tmp_path: Path
) -> None:
    pytest.importorskip("adbutils")
    with adbd.adb_server(tmp_path / "adbhome") as port:
        daemon = adbd.FakeAdbd(tmp_path / "phone")
        serial = adbd.connect(port, daemon)
        battery = daemon.root / "sys/class/power_supply/battery"
        battery.mkdir(parents=True)
        (battery / "current_now").write_text("-100000\n")
        (battery / "voltage_now").write_text("4000000\n")
        write_program(pytester.path / "prog.py", GAUGE_PROGRAM)
        write_json(
            pytester.path / "phone.json",
            {
                "model": {
                    "name": "net",
                    "format": "generic",
                    "files": {"program": {"filename": "prog.py", "location": "prog.py"}},
                },
                "tests": [
                    {
                        "identifier": "t",
                        "metric": "power",
                        "iter": 100,
                        # margins around the 1 s draw: a loaded machine slows the
                        # first samples over adb (a run under -n 2 saw none before it)
                        "collection_time": 3.5,
                        "env": {"GAUGE": "/sys/class/power_supply/battery/current_now"},
                        "platform_args": {"sleep_before_run": 1.0},
                        "commands": ["{files.program}"],
                    }
                ],
            },
        )
        result = pytester.runpytest(
            "--aibench-spec=phone.json",
            f"--aibench-devices=android:{serial}",
            f"--aibench-adb-port={port}",
            "--aibench-power=android",
            "--aibench-json=run.json",
        )
        daemon.stop()
    result.assert_outcomes(passed=1)
    records = {
        m["metric"]: m["values"][0]
        for m in json.loads((pytester.path / "run.json").read_text())["items"][0]["metrics"]
    }
    assert records["baseline_power"] == pytest.approx(400, rel=0.02)  # 100 mA x 4 V
    assert records["window_power"] == pytest.approx(3600, rel=0.1)  # 900 mA x 4 V
    # 3200 mW above the baseline for about 1 s, over 100 inferences: about 32 mJ each; the
    # sampling over adb (every 50 ms plus a shell round trip) blurs the edges.
    assert records["energy"] == pytest.approx(32, rel=0.15)
