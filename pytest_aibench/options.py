"""The option table and the frozen Settings resolved from it. Pure: no pytest, so that devices,
runners and reporters can take a ``Settings`` without reaching pytest; settings.py reads the
table into pytest's parser and resolves the values (CLI > environment > ini > default).

Each option declares its own validation (``check``): a function from the value its kind gives
to the value Settings holds, raising ``ValueError`` with what was expected. The checks import
what they parse with only when a value is given, so that reading the table costs every pytest
run nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from . import backends
from .endpoint import Endpoint
from .energy import SOURCES
from .names import path_component
from .records import BUILD_KEYS, BuildInfo
from .spec.placeholders import parse_string_map
from .verdicts.rules import Rule, Tolerance


@dataclass(frozen=True)
class Option:
    name: str
    help: str
    metavar: str
    default: Any = None
    kind: str = "str"  # str | int | float | path | paths | flag | optional
    ini: bool = True
    repeat: bool = False
    ini_name: str = ""
    check: Callable[[Any], Any] | None = None  # value -> value, ValueError when it is wrong
    section: str = ""  # the area that owns it: its section in docs/options.md and `aibench options`
    brief: str = ""  # its one line in `pytest --help`; options without one are left out there

    @property
    def flag(self) -> str:
        return f"--aibench-{self.name}"

    @property
    def dest(self) -> str:
        return "aibench_" + self.name.replace("-", "_")

    @property
    def ini_key(self) -> str:
        return self.ini_name or self.dest

    @property
    def env(self) -> str:
        return "AIBENCH_" + self.name.replace("-", "_").upper()


def default_model_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-aibench" / "models"


def _seconds(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise ValueError(f"expected a number of seconds > 0, found {value!r}")
    return value


def _at_least_one(value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ValueError(f"expected at least 1, found {value!r}")
    return value


def _probability(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"expected a probability between 0 and 1 (such as 0.01), found {value!r}")
    return value


def _percentage(text: str) -> float:
    try:
        return float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"expected a percentage such as 5%, found {text!r}") from None


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected {' or '.join(choices)}, found {value!r}")
        return value

    return check


def _power_source(value: str | None) -> str | None:
    if value and value not in SOURCES:
        raise ValueError(f"expected one of {', '.join(SOURCES)}, found {value!r}")
    return value


def _string_map(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return parse_string_map(text)


def _tolerance(text: str | None) -> Tolerance | None:
    if not text:
        return None  # the defaults
    return Tolerance.parse(text)


def _rules(texts: tuple[str, ...]) -> tuple[Rule, ...]:
    if not texts:
        return ()
    return tuple(Rule.parse(str(text)) for text in texts if str(text).strip())


def _save_name(name: str | None) -> str | None:
    if name:
        path_component(name, "save name")  # refuses a name no file can have
    return name


def _endpoint(url: str | None) -> str | None:
    if url:
        Endpoint.parse(url)
    return url


def _needs_matplotlib(path: Path | None) -> Path | None:
    if path is not None and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("needs matplotlib: pip install 'pytest-aibench[html]'")
    return path


def _build_info(path: Path | None) -> BuildInfo | None:
    """The build record ``aibench commits`` writes (continuous/builds.py), checked here so that
    a wrong path is a usage error before anything runs."""
    if path is None:
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in BUILD_KEYS):
        raise ValueError(f"{path} is not a build record: it needs {', '.join(BUILD_KEYS)}")
    return cast("BuildInfo", info)


def _folder(path: Path | None) -> Path | None:
    if path is not None and not path.is_dir():
        raise ValueError(f"expected a folder, found no folder at {path}")
    return path


def _program(command: str | None) -> str | None:
    """A program this machine can start: a path to an executable, or a name on $PATH."""
    if command is not None and shutil.which(command) is None:
        raise ValueError(f"expected a program to run, found no executable {command!r}")
    return command


def _model_cache(path: Path | None) -> Path:
    return path or default_model_cache()


# The table, one section per area that reads the options (its section in docs/options.md and in
# `aibench options`; `pytest --help` shows the options with a brief).


def _section(title: str, *options: Option) -> tuple[Option, ...]:
    return tuple(replace(option, section=title) for option in options)


SPEC_OPTIONS = _section(
    "specs and models",
    Option(
        "spec",
        "spec file or folder (searched recursively) to run; repeatable. Without "
        "positional arguments only the specs are collected",
        "PATH",
        kind="paths",
        repeat=True,
        ini_name="aibench_specs",
        brief="spec file or folder to run (repeatable)",
    ),
    Option(
        "string-map",
        "JSON object whose {KEY}s are replaced in every string of every spec "
        'at load, e.g. \'{"MODEL_DIR": "/data/models"}\'',
        "JSON",
        check=_string_map,
    ),
    Option(
        "root-model-dir",
        "folder that spec locations starting with // are relative to",
        "DIR",
        kind="path",
    ),
    Option(
        "model-cache",
        "folder for downloaded model files (default: $XDG_CACHE_HOME/pytest-aibench/models)",
        "DIR",
        kind="path",
        check=_model_cache,
    ),
    Option(
        "download-timeout",
        "seconds a download may stall before it fails (default 60)",
        "SECONDS",
        default=60.0,
        kind="float",
        check=_seconds,
    ),
    Option("program", "benchmark program that {program} in spec commands stands for", "PATH"),
    Option(
        "build-info",
        "the build.json of a build by 'aibench commits': the framework commit it was built "
        "from (hash, time, subject) is stored with the run",
        "PATH",
        kind="path",
        check=_build_info,
    ),
    Option(
        "platform-sig", "platform name to record for the host instead of OS and CPU model", "NAME"
    ),
)


DEVICE_OPTIONS = _section(
    "devices and the fleet",
    Option(
        "devices",
        "comma-separated devices to run on: host (the default), android (every "
        "connected one), android:SERIAL, android@HOST:PORT[/SERIAL] (a lab host's adb "
        "server), ios (every connected one), ios:UDID, ios@HOST:PORT[/UDID] (a lab host's "
        "usbmuxd), ssh://user@host:port; each spec case runs on each",
        "LIST",
        brief="devices to run on: host, android[:SERIAL], ios[:UDID], ssh://user@host",
    ),
    Option(
        "excluded-devices", "comma-separated devices (id, address or kind) to leave out", "LIST"
    ),
    Option(
        "ssh-options", "extra arguments for ssh, e.g. '-i key -o StrictHostKeyChecking=no'", "ARGS"
    ),
    Option(
        "remote-dir",
        "folder on ssh devices for pushed files (default /tmp/aibench)",
        "DIR",
        default="/tmp/aibench",
    ),
    Option(
        "fleet",
        "each: every case runs on every device (default); pool: each case runs "
        "once, on whichever device of its kind is free",
        "MODE",
        default="each",
        check=_one_of("each", "pool"),
    ),
    Option(
        "adb-port",
        "port of the adb server (default $ANDROID_ADB_SERVER_PORT or 5037)",
        "PORT",
        kind="int",
    ),
    Option(
        "android-dir",
        "folder on Android devices for pushed files (default /data/local/tmp/aibench)",
        "DIR",
        default="/data/local/tmp/aibench",
    ),
    Option(
        "usbmux",
        "usbmuxd to find iOS devices through: a UNIX socket path or HOST:PORT "
        "(default $USBMUXD_SOCKET_ADDRESS, else /var/run/usbmuxd)",
        "ADDRESS",
    ),
    Option(
        "set-freq",
        "pin the CPUs of rooted Android devices at max, min, mid or a kHz value "
        "before they run anything",
        "FREQ",
    ),
    Option(
        "reboot",
        "reboot each Android device (and wait for it to boot) before it runs its first item",
        "",
        kind="flag",
    ),
    Option(
        "max-temperature",
        "before each item, wait while an Android device is hotter than "
        "this many degrees C (up to 10 minutes)",
        "CELSIUS",
        kind="float",
    ),
    Option(
        "hash-platform-mapping",
        "JSON file mapping device hashes (serials, ssh addresses) to the platform names to record",
        "FILE",
        kind="path",
    ),
    Option(
        "lease-dir",
        "folder of the device leases every run on this machine shares "
        "(default: pytest-aibench-leases in the temp folder, made world-writable with the "
        "sticky bit)",
        "DIR",
        kind="path",
    ),
    Option(
        "lease-timeout",
        "seconds an item waits for a busy device before it fails (default: no limit)",
        "SECONDS",
        kind="float",
    ),
    Option(
        "list-devices",
        "print the fleet (kind, id, name, hash, ABI, OS) and exit",
        "",
        kind="flag",
        ini=False,
        brief="print the fleet and exit",
    ),
)

ENERGY_OPTIONS = _section(
    "energy and power",
    Option(
        "power",
        "power source: monsoon, monsoon_with_usb, software (Android charge "
        "counter), android (Android fuel gauge sampled over adb), rapl (this host's RAPL "
        "counters); default: a power test's method, else by device kind",
        "SOURCE",
        check=_power_source,
    ),
    Option(
        "energy",
        "also measure energy per run in ordinary tests, with the device's power "
        "source (recorded as NET energy, gated like latency)",
        "",
        kind="flag",
    ),
    Option(
        "monsoon-map",
        "JSON file mapping device hashes to the serial of the Monsoon meter that powers each",
        "FILE",
        kind="path",
    ),
    Option(
        "rapl-root",
        "powercap sysfs folder with the RAPL zones (default /sys/class/powercap)",
        "DIR",
        default=Path("/sys/class/powercap"),
        kind="path",
    ),
    Option(
        "traces",
        "folder for power traces, one compressed CSV per item (default: traces/ "
        "in the storage folder)",
        "DIR",
        kind="path",
    ),
)

RUN_OPTIONS = _section(
    "running",
    Option(
        "iterations",
        "timed iterations: default of the aibench fixture (50); for spec items "
        "it overrides the spec's iter",
        "N",
        kind="int",
        check=_at_least_one,
        brief="timed iterations per item (overrides the spec's iter)",
    ),
    Option(
        "warmup",
        "untimed warmup runs: default of the aibench fixture (5); for spec items "
        "it overrides the spec's warmup",
        "N",
        kind="int",
        brief="untimed warmup runs per item (overrides the spec's warmup)",
    ),
    Option(
        "timeout",
        "seconds a benchmark command may run before it is killed (default 300; "
        "a spec's timeout wins)",
        "SECONDS",
        default=300.0,
        kind="float",
        check=_seconds,
        brief="seconds a benchmark command may run (default 300)",
    ),
    Option(
        "observer-prefix",
        "extra line prefix of observer JSON rows, besides "
        "'Caffe2Observer ', 'PyTorchObserver ' and 'AIBENCH '",
        "PREFIX",
    ),
    Option(
        "error-tolerance",
        "tolerance of outputs against golden outputs where the spec gives "
        "none, as atol=X,rtol=Y (default atol=1e-5,rtol=1e-4)",
        "TOL",
        check=_tolerance,
    ),
    Option(
        "backend",
        "execution backend: cpu (default), cuda, onednn (PyTorch), xnnpack (LiteRT, ONNX "
        "Runtime), an ONNX Runtime execution provider (tensorrt, openvino, coreml, nnapi, qnn, "
        "dnnl, rocm, directml), a benchmark_model delegate (xnnpack, gpu, nnapi, hexagon, "
        "coreml), or a library FAI-PEP's --backend gave programs (eigen, mkl, nnpack, opengl, "
        "vulkan, metal: other programs get --backend NAME); an item whose framework lacks it "
        "skips, naming what it has; the backend is recorded with each result",
        "NAME",
        default=backends.DEFAULT,
        check=_one_of(*backends.BACKENDS),
        brief="execution backend: cpu (default), cuda, xnnpack, an ONNX Runtime provider, ...",
    ),
    Option(
        "cold",
        "in-process items measure NET load, NET first_inference and memory in N fresh "
        "processes (one sample each; the framework imported first) instead of once in "
        "pytest's own, where other items ran before",
        "N",
        kind="int",
        default=0,
    ),
    Option(
        "reference",
        "a framework (onnxruntime, tflite, pytorch) whose outputs are the golden of the "
        "others' for the same network, inputs and device: their errors against it become "
        "'<output> vs FRAMEWORK' metrics and the summary shows the agreement (a spec's "
        "'reference' field names one for its networks, and wins)",
        "FRAMEWORK",
    ),
    Option(
        "ops",
        "operators shown per item in the summary, most expensive first (default 5; "
        "0 shows none; the run file keeps all)",
        "N",
        default=5,
        kind="int",
    ),
)

VERDICT_OPTIONS = _section(
    "saved runs and verdicts",
    Option(
        "json",
        "write the run file (versioned JSON with raw samples) to PATH",
        "PATH",
        kind="path",
        ini=False,
        brief="write the run file (raw samples) to PATH",
    ),
    Option(
        "storage", "folder of saved runs (default: .aibench/ at the rootdir)", "DIR", kind="path"
    ),
    Option(
        "save",
        "save this run in the storage folder under NAME",
        "NAME",
        ini=False,
        check=_save_name,
        brief="save this run in the storage folder under NAME",
    ),
    Option("autosave", "save every run in the storage folder", "", kind="flag"),
    Option(
        "compare",
        "compare with a saved run: NAME, a run file PATH, 'history' (the history store's last "
        "--aibench-compare-runs runs), or the latest saved run when no value is given; "
        "regressions fail their items",
        "NAME|PATH|history",
        kind="optional",
        ini=False,
        brief="compare with a saved run (NAME, PATH, 'history' or the latest); regressions fail",
    ),
    Option(
        "compare-force",
        "compare even when the control ran on another device model or framework version, or its "
        "model files or input shapes changed",
        "",
        kind="flag",
        ini=False,
    ),
    Option(
        "compare-runs",
        "compare with the last K runs saved under the --aibench-compare name: their spread is "
        "the drift between runs that one run cannot show (default 1; 3 or more to use it)",
        "K",
        default=1,
        kind="int",
        check=_at_least_one,
    ),
    Option(
        "alpha",
        "significance level of the Mann-Whitney U test (default 0.01)",
        "P",
        default=0.01,
        kind="float",
        check=_probability,
    ),
    Option(
        "min-effect",
        "smallest change that fails, as a percentage (default 5%%)",
        "PERCENT",
        default="5%",
        check=_percentage,
    ),
    Option(
        "fail-on",
        "gate a metric with its own statistic and minimum effect, e.g. "
        "'NET latency:p90:3%%'; repeatable",
        "RULE",
        repeat=True,
        check=_rules,
        brief="gate a metric, e.g. 'NET latency:p90:3%%' (repeatable)",
    ),
    Option(
        "fdr",
        "control the false discovery rate across the run's items "
        "(Benjamini-Hochberg): the run fails at the end instead of item by item",
        "",
        kind="flag",
    ),
    Option(
        "ab-control",
        "A/B mode: run this control program and --aibench-program (the "
        "treatment) interleaved on the same device, then apply the gate",
        "PROGRAM",
        brief="A/B: interleave this control program with --aibench-program",
    ),
    Option(
        "ab-control-root",
        "A/B: a folder (a checkout of the base commit) holding the control version of the "
        "specs' files; each model, input and golden file of the rootdir is read there at the "
        "same relative path",
        "DIR",
        kind="path",
        check=_folder,
        brief="A/B: a checkout of the base commit holding the control's files",
    ),
    Option(
        "ab-control-python",
        "A/B: the Python of the control side's environment (another framework version or "
        "build); in-process cases run in a worker process under it",
        "PYTHON",
        check=_program,
    ),
    Option(
        "ab-blocks",
        "A/B: the case's iterations are split over N blocks, each side once per block with its "
        "own warmup; more blocks follow until the verdict is decided (default 5)",
        "N",
        default=5,
        kind="int",
        check=_at_least_one,
    ),
    Option(
        "ab-min-effect",
        "A/B: the smallest change that matters, as a percentage: an item is unchanged when "
        "the change is surely smaller, and fails when a slowdown is sure and may reach it "
        "(default 1.5%%)",
        "PERCENT",
        default="1.5%",
        check=_percentage,
    ),
    Option(
        "ab-max-time",
        "A/B: seconds of blocks per item before an undecided verdict is inconclusive (default 30)",
        "SECONDS",
        default=30.0,
        kind="float",
        check=_seconds,
    ),
    Option(
        "ab-time-limit",
        "A/B: while the interval of an undecided item still narrows, blocks go on past "
        "--aibench-ab-max-time up to this limit (default 120: four budgets; the budget itself "
        "or less: no blocks past it)",
        "SECONDS",
        default=120.0,
        kind="float",
        check=_seconds,
    ),
    Option(
        "fail-inconclusive",
        "A/B: fail items whose verdict is inconclusive (default: reported, not failed)",
        "",
        kind="flag",
    ),
    Option(
        "verify",
        "A/B re-runs of a suspected regression; it fails only if it holds in every one (default 1)",
        "N",
        default=1,
        kind="int",
    ),
    Option(
        "cooldown",
        "seconds a device rests after each item and between A/B blocks (default 0)",
        "SECONDS",
        default=0.0,
        kind="float",
    ),
    Option("seed", "seed of the A/B block order (default 0)", "N", default=0, kind="int"),
)

REPORT_OPTIONS = _section(
    "reports and sharing",
    Option(
        "local-reporter",
        "also write FAI-PEP's local reporter tree under DIR "
        "(<platform>/<framework>/<net>/<metric>/<identifier>/<Y>/<M>/<D>/<commit>/<N>/)",
        "DIR",
        kind="path",
    ),
    Option(
        "simple-local-reporter",
        "also write FAI-PEP's <identifier>/data.txt files under DIR",
        "DIR",
        kind="path",
    ),
    Option(
        "simple-screen-reporter",
        "also print each item's raw records (FAI-PEP's simple screen reporter)",
        "",
        kind="flag",
    ),
    Option(
        "remote-reporter",
        "also post every record as JSON to URL (FAI-PEP's "
        "'URL|category' form is accepted); what the server does not take is spooled in the "
        "storage folder and sent by the next run",
        "URL",
        check=_endpoint,
    ),
    Option(
        "remote-access-token",
        "token posted with the records; never printed or stored (prefer the environment variable)",
        "TOKEN",
        ini=False,
    ),
    Option(
        "remote-timeout",
        "seconds the remote reporter may spend, retries included, before "
        "it spools what is left (default 60)",
        "SECONDS",
        default=60.0,
        kind="float",
        check=_seconds,
    ),
    Option(
        "history",
        "the history store every run is appended to: a SQLite file (default: history.sqlite "
        "in the storage folder) or a lab's postgresql://user@host/db, which then also holds "
        "the device leases; 'off' appends nothing",
        "PATH|URL|off",
        brief="history store: SQLite file, postgresql://user@host/db, or off",
    ),
    Option(
        "html",
        "write a self-contained HTML report with plots to PATH (needs matplotlib: "
        "pip install pytest-aibench[html])",
        "PATH",
        kind="path",
        ini=False,
        check=_needs_matplotlib,
        brief="write a self-contained HTML report to PATH",
    ),
    Option(
        "benchmark-json",
        "also write the run in pytest-benchmark's JSON format",
        "PATH",
        kind="path",
        ini=False,
    ),
    Option(
        "github-json",
        "also write github-action-benchmark's customSmallerIsBetter list",
        "PATH",
        kind="path",
        ini=False,
    ),
    Option(
        "pytorch-json",
        "also write the PyTorch OSS benchmark database's records (every sample kept)",
        "PATH",
        kind="path",
        ini=False,
    ),
)

OPTIONS: tuple[Option, ...] = (
    SPEC_OPTIONS + DEVICE_OPTIONS + ENERGY_OPTIONS + RUN_OPTIONS + VERDICT_OPTIONS + REPORT_OPTIONS
)


@dataclass(frozen=True)
class Settings:
    spec: tuple[Path, ...]
    string_map: dict[str, str]
    root_model_dir: Path | None
    model_cache: Path
    download_timeout: float
    program: str | None
    build_info: BuildInfo | None
    platform_sig: str | None
    devices: str | None
    excluded_devices: str | None
    ssh_options: str | None
    remote_dir: str
    fleet: str
    adb_port: int | None
    android_dir: str
    usbmux: str | None
    set_freq: str | None
    reboot: bool
    max_temperature: float | None
    hash_platform_mapping: Path | None
    lease_dir: Path | None
    lease_timeout: float | None
    list_devices: bool
    power: str | None
    energy: bool
    monsoon_map: Path | None
    rapl_root: Path
    traces: Path | None
    iterations: int | None
    warmup: int | None
    timeout: float
    observer_prefix: str | None
    error_tolerance: Tolerance | None  # None: the defaults
    backend: str
    reference: str | None
    cold: int
    ops: int
    json: Path | None
    storage: Path | None
    save: str | None
    autosave: bool
    compare: str | None
    compare_force: bool
    compare_runs: int
    alpha: float
    min_effect: float
    fail_on: tuple[Rule, ...]
    fdr: bool
    ab_control: str | None
    ab_control_root: Path | None
    ab_control_python: str | None
    ab_blocks: int
    ab_min_effect: float
    ab_max_time: float
    ab_time_limit: float
    fail_inconclusive: bool
    verify: int
    cooldown: float
    seed: int
    local_reporter: Path | None
    simple_local_reporter: Path | None
    simple_screen_reporter: bool
    remote_reporter: str | None
    remote_access_token: str | None = field(repr=False)
    remote_timeout: float
    history: str | None
    html: Path | None
    benchmark_json: Path | None
    github_json: Path | None
    pytorch_json: Path | None
    specs_from_command_line: bool = False

    @property
    def wants_outputs(self) -> bool:
        """Whether the user asked for an output file even if nothing was measured."""
        return bool(
            self.json
            or self.save
            or self.autosave
            or self.benchmark_json
            or self.github_json
            or self.pytorch_json
            or self.local_reporter
            or self.simple_local_reporter
            or self.simple_screen_reporter
            or self.html
        )

    @property
    def fleet_run(self) -> bool:
        """Specs or devices named: the run has a fleet to list and schedule (a run without
        either keeps xdist's own scheduling and probes no device)."""
        return bool(self.spec or self.devices)

    def spec_counts(self, iterations: int | None, warmup: int | None) -> tuple[int, int]:
        """A spec case's iterations and warmup: the command line's where given (they override
        a spec's ``iter`` and ``warmup``), else the case's, else the defaults."""
        warmup = self.warmup if self.warmup is not None else warmup
        return (
            self.iterations or iterations or SPEC_ITERATIONS,
            SPEC_WARMUP if warmup is None else warmup,
        )

    def fixture_counts(self, iterations: int | None, warmup: int | None) -> tuple[int, int]:
        """The ``aibench`` fixture's: the test's own (its ``aibench`` mark) where given, else
        the command line's (for the fixture they are defaults), else the defaults."""
        warmup = warmup if warmup is not None else self.warmup
        return (
            iterations or self.iterations or FIXTURE_ITERATIONS,
            FIXTURE_WARMUP if warmup is None else warmup,
        )

    def storage_under(self, rootdir: Path) -> Path:
        """Where runs are saved: --aibench-storage, else .aibench under pytest's rootdir."""
        return self.storage or rootdir / STORAGE


STORAGE = ".aibench"  # the storage folder's name (under pytest's rootdir; aibench: the cwd)
SPEC_ITERATIONS, SPEC_WARMUP = 50, 1
FIXTURE_ITERATIONS, FIXTURE_WARMUP = 50, 5
