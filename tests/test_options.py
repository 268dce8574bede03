"""Every option is where a user looks for it: in ``pytest --help``, in docs/options.md's tables,
and the README's short list of the ones most users need."""

from pathlib import Path

import pytest
from pytest import Pytester

from pytest_aibench.options import OPTIONS, Option

REPOSITORY = Path(__file__).resolve().parents[1]
README = (REPOSITORY / "README.md").read_text(encoding="utf-8")
OPTIONS_PAGE = (REPOSITORY / "docs/options.md").read_text(encoding="utf-8")


def test_help_shows_the_main_options_and_points_to_the_rest(pytester: Pytester) -> None:
    text = pytester.runpytest("--help").stdout.str()
    heads = {line.split()[0].split("=")[0] for line in text.splitlines() if line.startswith("  --")}
    assert [o.flag for o in OPTIONS if o.flag in heads] == [o.flag for o in OPTIONS if o.brief]
    assert f"all {len(OPTIONS)}, each also read from $AIBENCH_<NAME>" in text
    assert "'aibench options'" in text


def test_help_grows_by_less_than_a_hundred_lines(pytester: Pytester) -> None:
    with_plugin = pytester.runpytest("--help").outlines
    without = pytester.runpytest("-p", "no:aibench", "--help").outlines
    assert 0 < len(with_plugin) - len(without) <= 100


def test_aibench_options_lists_every_option_with_its_env_and_ini_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_aibench.cli import main

    assert main(["options"]) == 0
    text = capsys.readouterr().out
    missing = [
        o.flag
        for o in OPTIONS
        if f"{o.flag} " not in text or o.env not in text or (o.ini and o.ini_key not in text)
    ]
    assert missing == []


def test_a_hidden_option_works_from_the_command_line_and_its_ini_key(pytester: Pytester) -> None:
    pytester.makepyfile("def test_timed(aibench):\n    aibench(sum, range(10))\n")
    pytester.makeini("[pytest]\naibench_ops = 0\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", "--aibench-autosave"
    )
    result.assert_outcomes(passed=1)
    assert list((pytester.path / ".aibench").glob("*.json"))  # --aibench-autosave took effect
    assert "operators" not in result.stdout.str()  # aibench_ops = 0 from the ini file


def option_sections() -> dict[str, list[str]]:
    """The options each ``## section`` of docs/options.md lists."""
    sections: dict[str, list[str]] = {}
    for block in OPTIONS_PAGE.split("\n## ")[1:]:
        title, *lines = block.splitlines()
        rows = [line for line in lines if line.startswith("| `--aibench-")]
        sections[title.lower()] = [row.split("`")[1].split()[0].split("[")[0] for row in rows]
    return sections


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.flag)
def test_the_options_page_lists_every_option_in_its_section(option: Option) -> None:
    assert option.flag in option_sections().get(option.section, []), option.section


@pytest.mark.parametrize("page", [OPTIONS_PAGE, README], ids=["docs/options.md", "README.md"])
def test_the_ini_twin_of_every_option_listed_is_named(page: str) -> None:
    rows = {
        line.split("`")[1].split()[0]: line
        for line in page.splitlines()
        if line.startswith("| `--aibench-")
    }
    named = [o for o in OPTIONS if o.flag in rows]
    assert named, "no option table"
    wrong = [o.flag for o in named if o.ini and f"`{o.ini_key}`" not in rows[o.flag]]
    assert wrong == []


def test_the_public_api_is_what_the_architecture_page_lists() -> None:
    import pytest_aibench

    page = (Path(__file__).resolve().parents[1] / "docs/architecture.md").read_text("utf-8")
    listed = page.split("<!-- public-api -->")[1].split("<!-- /public-api -->")[0]
    names = {
        name.strip(" `")
        for line in listed.splitlines()
        if line.startswith("- ")
        for name in line[2:].split(":")[0].split(",")
    }
    assert names == set(pytest_aibench.__all__)


def test_every_public_name_resolves_and_none_is_imported_before_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pytest_aibench as p\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('pytest_aibench.'))\n"
        "missing = [n for n in p.__all__ if getattr(p, n, None) is None]\n"
        "print(loaded, missing)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "[]"]


@pytest.mark.parametrize("ini", [None, "[pytest]\naddopts = -v\n"])
@pytest.mark.parametrize("written", ["space", "equals"])
def test_a_path_option_keeps_the_rootdir_written_with_a_space_or_equals(
    pytester: Pytester, ini: str | None, written: str
) -> None:
    """A folder outside the project, named after a space, is an option's value, not a path
    pytest should count when it chooses the rootdir and ini file."""
    outside = pytester.path.parent / f"{pytester.path.name}-control"
    outside.mkdir()
    if ini:
        pytester.makeini(ini)
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    option = ["--aibench-ab-control-root", str(outside)]
    if written == "equals":
        option = ["=".join(option)]
    result = pytester.runpytest_subprocess(*option, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"rootdir: {pytester.path}"])
    if ini:
        result.stdout.fnmatch_lines(["configfile: tox.ini", "test_plain.py::test_one PASSED*"])
