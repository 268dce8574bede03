"""Every option is where a user looks for it: in ``pytest --help`` and in the README's table."""

import itertools
from pathlib import Path

import pytest
from pytest import Pytester

from pytest_aibench.options import OPTIONS, Option

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_help_lists_every_option_with_its_environment_twin(pytester: Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    missing = [o.flag for o in OPTIONS if o.flag not in text or o.env not in text]
    assert missing == []


def readme_sections() -> dict[str, list[str]]:
    """The options each ``### section`` of the README's Options chapter lists."""
    chapter = README.split("\n## Options\n")[1].split("\n## ")[0]
    sections: dict[str, list[str]] = {}
    for block in chapter.split("\n### ")[1:]:
        title, *lines = block.splitlines()
        rows = [line for line in lines if line.startswith("| `--aibench-")]
        sections[title.lower()] = [row.split("`")[1].split()[0].split("[")[0] for row in rows]
    return sections


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.flag)
def test_the_readme_lists_every_option_in_its_section(option: Option) -> None:
    assert option.flag in readme_sections().get(option.section, []), option.section


def test_help_groups_the_options_by_section(pytester: Pytester) -> None:
    text = pytester.runpytest("--help").stdout.str()
    for first, second in itertools.pairwise(OPTIONS):
        if first.section != second.section:
            heading = f"pytest-aibench: {second.section}:"
            assert text.index(first.flag) < text.index(heading) < text.index(second.flag)


def test_the_readme_names_the_ini_twin_of_every_option_that_has_one() -> None:
    rows = {
        line.split("`")[1].split()[0]: line
        for line in README.splitlines()
        if line.startswith("| `--aibench-")
    }
    wrong = [o.flag for o in OPTIONS if o.ini and f"`{o.ini_key}`" not in rows.get(o.flag, "")]
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
