"""A lab for a team: one PostgreSQL store shared by many processes (a real server, started by
the tests), device leases held in it, devices on other hosts' adb servers, and the dashboard."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest import Pytester

from pytest_aibench.devices.base import DeviceInfo
from pytest_aibench.devices.lease import lease_any
from pytest_aibench.errors import DeviceError
from pytest_aibench.store import history

from .helpers import board_held_elsewhere, generic_spec, write_json, write_program

BOARD = DeviceInfo("ssh", "board", "b", "ssh://b", "x", "y")


def test_a_lease_in_the_store_says_who_holds_it_and_a_killed_holder_frees_it(
    tmp_path: Path, postgresql_url: str
) -> None:
    # each process has a lease folder of its own: only the store can keep them apart
    with board_held_elsewhere(
        tmp_path / "theirs", postgresql_url, env={"AIBENCH_HOLDER": "ci-job 4711"}
    ) as holder:
        said: list[str] = []
        with (
            pytest.raises(DeviceError, match="within --aibench-lease-timeout=1 s") as refused,
            lease_any(
                [BOARD], tmp_path / "ours", timeout=1, notify=said.append, store=postgresql_url
            ),
        ):
            pass
        held = f"board, held by ci-job 4711 on {socket.gethostname()} since "
        assert len(said) == 1 and said[0].startswith(f"aibench: waiting for {held}")
        assert held in str(refused.value)
        holder.kill()  # SIGKILL: no release, no clean-up; the server ends its session
        holder.wait()
        started = time.monotonic()
        with lease_any([BOARD], tmp_path / "ours", timeout=30, store=postgresql_url) as info:
            assert info == BOARD
            waited = time.monotonic() - started
    assert waited < 30
    # released: a third process takes it at once, and nobody is named as its holder
    with lease_any([BOARD], tmp_path / "third", timeout=0, store=postgresql_url):
        pass


@pytest.mark.parametrize("store", [None, "h.sqlite"])
def test_without_a_shared_store_leases_stay_file_locks(tmp_path: Path, store: str | None) -> None:
    """No store, or a SQLite one (this host's): the lock files decide."""
    leasing = lease_any([BOARD], tmp_path, timeout=0.2, store=store and tmp_path / store)
    with board_held_elsewhere(tmp_path), pytest.raises(DeviceError, match="held by pid"), leasing:
        pass


SPANS_TEST = """
import time, pytest
from pathlib import Path

@pytest.mark.parametrize("n", range(3))
@pytest.mark.aibench(iterations=3, warmup=0)
def test_timed(aibench, n):
    start = time.time()
    aibench(time.sleep, 0.1)
    Path({spans!r}, "{run}-" + str(n)).write_text(f"{{start}} {{time.time()}}")
"""


def test_two_xdist_runs_share_one_store_and_never_use_the_host_at_once(
    pytester: Pytester, postgresql_url: str
) -> None:
    """Two ``pytest -n 2`` runs at once, as two CI jobs on one lab host whose lease folders
    differ: the store's leases keep the host to one item at a time, and both runs land."""
    pytest.importorskip("xdist")
    spans = pytester.path / "spans"
    spans.mkdir()
    jobs = []
    for run in ("a", "b"):
        folder = pytester.path / run
        folder.mkdir()
        (folder / "test_timed.py").write_text(SPANS_TEST.format(spans=str(spans), run=run))
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2"]
        command += [f"--aibench-history={postgresql_url}", f"--aibench-lease-dir={folder}/leases"]
        jobs.append(
            subprocess.Popen(
                command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    intervals = sorted(tuple(map(float, path.read_text().split())) for path in spans.iterdir())
    assert len(intervals) == 6
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(intervals))
    with history.connect(postgresql_url) as db:
        stored = history.run_rows(db, history.Filters())
    assert len(stored) == 2 and [row[5] for row in stored] == [3, 3]  # runs, 3 items each


SPAN_PROGRAM = """#!/usr/bin/env python3
import json, os, sys, time, uuid
start = time.time()
time.sleep(0.3)
print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "ms", "value": 300}))
with open(os.path.join(os.environ["SPANS"], uuid.uuid4().hex), "w") as out:
    out.write(f"{os.getcwd()}\\n{start} {time.time()}")
"""


def test_two_adb_servers_devices_in_one_run_each_used_once_at_a_time(
    pytester: Pytester, tmp_path: Path
) -> None:
    """Two adb servers on two ports stand for two lab hosts, two phones on each; one
    ``pytest -n 2`` run lists both servers and runs every case on every phone."""
    pytest.importorskip("adbutils")
    pytest.importorskip("xdist")
    from . import adbd

    spans = tmp_path / "spans"
    spans.mkdir()
    write_program(pytester.path / "prog.py", SPAN_PROGRAM)
    tests = [
        {"identifier": f"t{i}", "metric": "delay", "iter": 1, "env": {"SPANS": str(spans)}}
        | {"commands": ["{files.program}"]}
        for i in range(2)
    ]
    write_json(pytester.path / "lab.json", generic_spec("lab", tests=tests))
    with contextlib.ExitStack() as stack:
        servers, phones = [], {}
        for host in ("lab1", "lab2"):
            port = stack.enter_context(adbd.adb_server(tmp_path / f"{host}-home"))
            servers.append(f"android@127.0.0.1:{port}")
            for number in (1, 2):
                daemon = adbd.FakeAdbd(tmp_path / f"{host}-phone{number}")
                stack.callback(daemon.stop)
                phones[daemon.root] = (port, adbd.connect(port, daemon))
        result = pytester.runpytest_subprocess(
            "-n",
            "2",
            "--aibench-spec=lab.json",
            f"--aibench-devices={','.join(servers)}",
            "--aibench-json=run.json",
            f"--aibench-lease-dir={tmp_path / 'leases'}",
        )
    result.assert_outcomes(passed=8)  # 2 cases x 4 phones
    run = json.loads((pytester.path / "run.json").read_text())
    recorded = {item["device"]["hash"] for item in run["items"]}
    assert recorded == {f"127.0.0.1:{port}/{serial}" for port, serial in phones.values()}
    by_phone: dict[str, list[tuple[float, float]]] = {}
    for path in spans.iterdir():
        cwd, times = path.read_text().splitlines()
        (root,) = [str(root) for root in phones if cwd.startswith(str(root))]
        start, end = map(float, times.split())
        by_phone.setdefault(root, []).append((start, end))
    assert sorted(len(spans) for spans in by_phone.values()) == [2, 2, 2, 2]
    for intervals in by_phone.values():
        (first_end, second_start) = (sorted(intervals)[0][1], sorted(intervals)[1][0])
        assert first_end <= second_start  # never two items on one phone at once


def test_aibench_devices_lists_the_lab_with_states_and_holders(
    tmp_path: Path, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two lab hosts' adb servers: a free phone, a phone held by a CI job (in the store), a
    phone that went offline; and a third host whose server is down, which hides no other."""
    pytest.importorskip("adbutils")
    from . import adbd

    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(adbd.adb_server(tmp_path / f"h{n}")) for n in (1, 2)]
        daemons = [adbd.FakeAdbd(tmp_path / f"phone{n}") for n in range(3)]
        for daemon in daemons:
            stack.callback(daemon.stop)
        hosts = [*ports, ports[1]]  # the third phone on the second host
        serials = [adbd.connect(port, d) for port, d in zip(hosts, daemons, strict=True)]
        down = socket.create_server(("127.0.0.1", 0))  # a port where no adb server answers
        down_port = down.getsockname()[1]
        down.close()
        entries = [f"android@127.0.0.1:{port}" for port in [*ports, down_port]]
        free, held, offline = (
            f"127.0.0.1:{port}/{serial}" for port, serial in zip(hosts, serials, strict=True)
        )
        phone = DeviceInfo("android", android_id(held), "FeasPhone", held, "arm64-v8a", "x")
        daemons[2].stop()  # pulled out: the server reports it offline
        wait_for_state(ports[1], serials[2], "offline")
        monkeypatch.setenv("AIBENCH_HOLDER", "ci-job 99")
        with lease_any([phone], tmp_path / "leases", store=postgresql_url):
            listed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest_aibench",
                    "devices",
                    "--db",
                    postgresql_url,
                    "--devices",
                    ",".join(entries),
                ],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                timeout=120,
            )
    assert listed.returncode == pytest.ExitCode.USAGE_ERROR, listed.stderr
    rows = {line.split()[3]: line for line in listed.stdout.splitlines()[1:]}
    assert rows[free].endswith(" free")
    assert f" held by ci-job 99 on {socket.gethostname()} since " in rows[held]
    assert rows[offline].endswith(" offline")
    assert f"the adb server at 127.0.0.1:{down_port} does not answer" in listed.stderr


def wait_for_state(port: int, serial: str, state: str) -> None:
    import adbutils

    client = adbutils.AdbClient(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while {d.serial: d.state for d in client.list()}.get(serial) != state:
        assert time.monotonic() < deadline, f"{serial} never went {state}"
        time.sleep(0.1)


def android_id(device_hash: str) -> str:
    from pytest_aibench.devices.android import device_id

    return device_id(device_hash)


def test_a_lab_store_out_of_reach_costs_no_run_and_push_sends_it_later(
    pytester: Pytester, postgresql_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_aibench.cli import main as aibench

    closed = socket.create_server(("127.0.0.1", 0))  # a port where no server answers
    down = f"postgresql://aibench@127.0.0.1:{closed.getsockname()[1]}/aibench"
    closed.close()
    pytester.makepyfile(
        test_timed="""
import time, pytest
@pytest.mark.aibench(iterations=3, warmup=0)
def test_timed(aibench):
    aibench(time.sleep, 0.01)
"""
    )
    result = pytester.runpytest_subprocess(
        f"--aibench-history={down}", "--aibench-json=run.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*the lab's store cannot be reached for leases (*refused*): this host's lock files*",
            f"aibench: the run was not added to the history store {down} (*): kept in "
            f"*history-spool*; 'aibench history push --db {down}' sends it",
        ]
    )
    spool = pytester.path / ".aibench" / "history-spool"
    code = aibench(["history", "--db", postgresql_url, "push", "--spool", str(spool)])
    assert code == 0 and "pushed 1 runs" in capsys.readouterr().out
    assert not list(spool.iterdir())
    run = json.loads((pytester.path / "run.json").read_text())
    with history.connect(postgresql_url) as db:
        assert history.load_run(db, run["id"])["items"][0]["nodeid"] == run["items"][0]["nodeid"]


WAITING_PROGRAM = """#!/usr/bin/env python3
import json, os, sys, time
open(sys.argv[1] + ".started", "w").close()
while not os.path.exists(sys.argv[1] + ".go"):
    time.sleep(0.05)
print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "ms", "value": 1.0}))
"""


def test_losing_the_lab_store_mid_item_costs_no_item_and_the_run_is_spooled(
    pytester: Pytester,
) -> None:
    from . import postgres

    if not postgres.available():
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    write_program(pytester.path / "prog.py", WAITING_PROGRAM)
    signal = pytester.path / "signal"
    tests = [
        {"identifier": name, "metric": "delay", "iter": 1, "warmup": 0,
         "commands": [f"{{files.program}} {signal}-{name}"]}
        for name in ("first", "second")
    ]  # fmt: skip
    write_json(pytester.path / "s.json", generic_spec(tests=tests))
    with postgres.server() as url:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--aibench-spec=s.json", f"--aibench-history={url}",
             "-p", "no:cacheprovider"],
            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        started = Path(f"{signal}-first.started")
        deadline = time.monotonic() + 60
        while not started.exists():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0]
            time.sleep(0.05)
        postgres.stop(url)  # mid-item: the item holds the host's lease in the store
        for name in ("first", "second"):
            Path(f"{signal}-{name}.go").touch()
        out, _ = run.communicate(timeout=120)
    assert run.returncode == 0, out
    assert "Traceback" not in out and "2 passed" in out
    assert out.count("the lab's store stopped answering for leases") == 1
    assert "this host's lock files are used" in out
    assert "aibench: the run was not added to the history store" in out
    assert list((pytester.path / ".aibench" / "history-spool").glob("*.json"))
