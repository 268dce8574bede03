import pytest

from pytest_aibench.metrics import MetricRecord, net_first, percentile, summarize


def test_faipep_vectors_for_default_statistics() -> None:
    summary = summarize([0, 1, 2, 3, 4])
    assert summary == {
        "mean": 2.0,
        "p0": 0.0,
        "p10": pytest.approx(0.4, abs=1e-15),
        "p50": 2.0,
        "p90": pytest.approx(3.6, abs=1e-15),
        "p100": 4.0,
        "stdev": 1.4142135623730951,
        "MAD": 1.0,
        "cv": 0.7071067811865476,
    }


def test_faipep_vectors_for_custom_percentiles() -> None:
    summary = summarize([4, 0, 3, 1, 2], ["p5", "p11", "p95"])
    assert summary["p5"] == pytest.approx(0.2, abs=1e-15)
    assert summary["p11"] == pytest.approx(0.44, abs=1e-15)
    assert summary["p95"] == pytest.approx(3.8, abs=1e-15)
    assert summary["p50"] == 2.0  # always added


def test_cv_is_none_when_mean_is_zero() -> None:
    assert summarize([-2, -1, 0, 1, 2])["cv"] is None


def test_percentiles_match_numpy_linear_interpolation() -> None:
    numpy = pytest.importorskip("numpy")
    values = [5.0, 1.5, 9.25, 3.0, 7.75, 2.0, 8.5]
    for pct in (0, 12.5, 33.3, 50, 77, 99.9, 100):
        assert percentile(sorted(values), pct) == pytest.approx(numpy.percentile(values, pct))


def test_even_count_median_is_the_mean_of_the_middle_pair() -> None:
    assert summarize([1, 2, 3, 10])["p50"] == 2.5


def test_population_stdev_and_unscaled_mad() -> None:
    summary = summarize([2, 4, 4, 4, 5, 5, 7, 9])
    assert summary["stdev"] == 2.0
    assert summary["MAD"] == 0.5  # median 4.5; deviations 2.5 .5 .5 .5 .5 .5 2.5 4.5


def test_unknown_statistic_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown statistic 'median'"):
        summarize([1.0], ["median"])
    with pytest.raises(ValueError, match=r"\[0, 100\], got 101"):
        summarize([1.0], ["p101"])


def test_record_prefers_samples_and_keeps_a_tools_summary_verbatim() -> None:
    sampled = MetricRecord("NET", "latency", "us", values=[1.0, 2.0, 3.0])
    assert sampled.to_dict()["summary"]["p50"] == 2.0
    assert sampled.to_dict()["summary_source"] == "samples"
    tool = MetricRecord(
        "NET", "latency", "us", summary={"mean": 30388.2, "p0": 29820.0}, num_runs=50
    )
    data = tool.to_dict()
    assert data["summary"] == {"mean": 30388.2, "p0": 29820.0}
    assert "p50" not in data["summary"]  # never invented
    assert data["num_runs"] == 50
    assert MetricRecord.from_dict(data).summary == tool.summary


def test_net_rows_come_first() -> None:
    assert net_first(["conv1 latency", "NET_ cpu", "NET latency", "add latency"]) == [
        "NET latency",
        "NET_ cpu",
        "add latency",
        "conv1 latency",
    ]


def test_empty_samples_have_an_empty_summary() -> None:
    assert summarize([]) == {}
    with pytest.raises(ValueError):
        percentile([], 50)
