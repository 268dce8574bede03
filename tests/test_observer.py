"""Observer rows → metric records (FAI-PEP's line protocol)."""

import json

import pytest

from pytest_aibench.errors import RunnerError
from pytest_aibench.parsers.observer import parse_observer_lines


def test_value_rows_become_samples_keyed_by_type_and_metric() -> None:
    lines = [
        "starting",
        'Caffe2Observer {"type": "NET","unit": "us","metric": "latency","value": "15234.000000"}',
        'Caffe2Observer {"type": "conv1","unit": "us","metric": "latency","value": "812.4"}',
        'Caffe2Observer {"type": "NET","unit": "us","metric": "latency","value": "15100"}',
        'Caffe2Observer {"type": "conv1","unit": "flop","metric": "flops","value": "21000000"}',
    ]
    records = parse_observer_lines(lines).records
    assert records["NET latency"].values == [15234.0, 15100.0]
    assert records["NET latency"].unit == "us"
    assert records["conv1 latency"].values == [812.4]
    assert records["conv1 flops"].unit == "flop"


def test_prefix_may_follow_logcat_or_glog_text() -> None:
    line = (
        "I1128 13:00:00.1 123 net.cc:42] PyTorchObserver "
        '{"type": "MLM", "metric": "tps", "unit": "token/sec", "value": "4526"}'
    )
    assert parse_observer_lines([line]).records["MLM tps"].values == [4526.0]


def test_info_summary_and_custom_rows() -> None:
    lines = [
        'AIBENCH {"type": "conv1", "unit": "", "metric": "tensor_shapes", '
        '"info_string": "[[1, 3, 224, 224, ], ]"}',
        'AIBENCH {"type": "conv1", "unit": "", "metric": "tensor_shapes", "info_string": "late"}',
        'AIBENCH {"type": "NET", "unit": "ms", "metric": "latency", "num_runs": 20, '
        '"summary": {"p50": 3.5, "mean": 3.6}}',
        'AIBENCH {"type": "NET", "unit": "us", "metric": "wall", "num_runs": 8, '
        '"summary": [1, 2, 3, 4, 5, 3, 1.2, 1]}',
        'AIBENCH {"custom_output": {"top1": 0.71}, "table_name": "accuracy"}',
        'AIBENCH {"custom_output": [1, 2]}',
    ]
    output = parse_observer_lines(lines)
    assert output.records["conv1 tensor_shapes"].info_string == "[[1, 3, 224, 224, ], ]"
    latency = output.records["NET latency"]
    assert latency.summary == {"p50": 3.5, "mean": 3.6} and latency.num_runs == 20
    assert latency.values == []
    assert output.records["NET wall"].summary == {
        "p0": 1.0,
        "p10": 2.0,
        "p50": 3.0,
        "p90": 4.0,
        "p100": 5.0,
        "mean": 3.0,
        "stdev": 1.2,
        "MAD": 1.0,
    }
    assert output.custom_output == {"accuracy": [{"top1": 0.71}], "Custom Output": [[1, 2]]}


def test_legacy_nested_form() -> None:
    line = 'Caffe2Observer {"NET": {"latency": {"value": "12.5", "unit": "ms"}}}'
    record = parse_observer_lines([line]).records["NET latency"]
    assert record.values == [12.5] and record.unit == "ms"


def test_broken_rows_are_skipped_and_listed() -> None:
    lines = [
        'PyTorchObserver {"type": "NET", "metric": "latency", "value": ',
        'PyTorchObserver {"type": "NET", "metric": "latency", "unit": "us", "value": "x"}',
        'PyTorchObserver {"type": "NET", "metric": "latency", "unit": "us", "value": 3}',
    ]
    output = parse_observer_lines(lines)
    assert output.records["NET latency"].values == [3.0]
    assert output.skipped_lines == lines[:2]


def test_only_known_prefixes_count() -> None:
    lines = [
        '{"type": "NET", "metric": "latency", "unit": "us", "value": 3}',
        'MyTool {"type": "NET", "metric": "latency", "unit": "us", "value": 4}',
    ]
    assert parse_observer_lines(lines).records == {}
    assert parse_observer_lines(lines, ["MyTool "]).records["NET latency"].values == [4.0]


def test_one_metric_in_two_units_is_an_error() -> None:
    lines = [
        'AIBENCH {"type": "NET", "metric": "latency", "unit": "us", "value": 3}',
        'AIBENCH {"type": "NET", "metric": "latency", "unit": "ms", "value": 3}',
    ]
    with pytest.raises(RunnerError, match="'NET latency' is reported in 'us' and in 'ms'"):
        parse_observer_lines(lines)


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_value_is_no_sample(value: bool) -> None:
    row = {"type": "NET", "metric": "latency", "unit": "ms", "value": value}
    line = f"AIBENCH {json.dumps(row)}"
    parsed = parse_observer_lines([line])
    assert parsed.records == {} and parsed.skipped_lines == [line]
