import pytest

from pytest_aibench.spec.placeholders import chained, fill, parse_string_map


def test_fields_resolve_repeatedly_until_stable() -> None:
    model = {"total_images": 500, "repeat": 10, "images_per_batch": "{total_images}/{repeat}"}
    assert fill("--batch {images_per_batch}", chained({}, model)) == "--batch 500/10"


def test_sources_are_searched_in_order_and_dotted_names_walk_objects() -> None:
    lookup = chained(
        {"files": {"init": "/tgt/init.pb"}, "iter": 7}, {"iter": 50, "name": "t"}, {"name": "m"}
    )
    assert fill("{files.init} {iter} {name}", lookup) == "/tgt/init.pb 7 t"


def test_unknown_tokens_and_awk_programs_stay_literal() -> None:
    lookup = chained({"INDEX": 2})
    text = "awk '(NR>{INDEX}) {print $1}' {UNKNOWN} {files.missing}"
    assert fill(text, lookup) == "awk '(NR>2) {print $1}' {UNKNOWN} {files.missing}"


def test_containers_are_not_substituted_and_cycles_stop() -> None:
    lookup = chained({"inputs": {"x": 1}, "a": "{b}", "b": "{a}"})
    assert fill("{inputs}", lookup) == "{inputs}"
    assert fill("{a}", lookup) in ("{a}", "{b}")


def test_string_map_option_parsing() -> None:
    assert parse_string_map('{"A": "1", "B": 2}') == {"A": "1", "B": "2"}
    assert parse_string_map(None) == {}
    with pytest.raises(ValueError, match="expected a JSON object"):
        parse_string_map("[1]")
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_string_map("{oops")
