"""A run file in other tools' formats: pytest-benchmark's JSON, github-action-benchmark's, and
the PyTorch OSS benchmark database's records (what ExecuTorch's and PyTorch's dashboards read)."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from ..records import RunFile
from ..verdicts.statistics import LOWER, direction

_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def _time_stats(values: list[float]) -> dict[str, Any]:
    """pytest-benchmark's stats keys for samples already in seconds."""
    import numpy as np

    data = np.asarray(values)
    q1, median, q3 = (float(q) for q in np.percentile(data, [25, 50, 75]))
    iqr = q3 - q1
    mean = float(data.mean())
    stddev = float(data.std(ddof=1)) if len(data) > 1 else 0.0
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = data[(data >= low_fence) & (data <= high_fence)]
    iqr_outliers = int(len(data) - len(inside))
    stddev_outliers = int(((data < mean - stddev) | (data > mean + stddev)).sum())
    return {
        "min": float(data.min()),
        "max": float(data.max()),
        "mean": mean,
        "stddev": stddev,
        "rounds": len(data),
        "median": median,
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": float(inside.min()) if len(inside) else float(data.min()),
        "hd15iqr": float(inside.max()) if len(inside) else float(data.max()),
        "ops": 1.0 / mean if mean else 0.0,
        "total": float(data.sum()),
        "iterations": 1,
        "data": [float(v) for v in data],
    }


def to_pytest_benchmark(run: RunFile) -> dict[str, Any]:
    """The run as pytest-benchmark's JSON: one benchmark per item and timed metric with raw
    samples (times in seconds). Summary-only and non-time metrics have no place there."""
    machine = run["machine"]
    commit: Mapping[str, Any] = run.get("commit") or {}
    benchmarks = []
    for item in run["items"]:
        name = str(item["nodeid"]).rsplit("::", 1)[-1]
        for metric in item["metrics"]:
            scale = _SECONDS.get(metric["unit"])
            if scale is None or len(metric["values"]) < 2:
                continue
            key = f"{metric['type']} {metric['metric']}"
            benchmarks.append(
                {
                    "group": key,
                    "name": name,
                    "fullname": f"{item['nodeid']}::{key}",
                    "params": None,
                    "param": None,
                    "extra_info": {
                        "unit": metric["unit"],
                        "device": item.get("device"),
                        "case": item.get("case"),
                    },
                    "options": {
                        "disable_gc": False,
                        "timer": "perf_counter",
                        "min_rounds": 1,
                        "max_time": 0.0,
                        "min_time": 0.0,
                        "warmup": False,
                    },
                    "stats": _time_stats([v * scale for v in metric["values"]]),
                }
            )
    return {
        "machine_info": {
            "node": machine["node"],
            "processor": machine["cpu"],
            "machine": machine["machine"],
            "python_compiler": platform.python_compiler(),
            "python_implementation": machine["python_implementation"],
            "python_implementation_version": machine["python"],
            "python_version": machine["python"],
            "python_build": list(platform.python_build()),
            "release": machine["release"],
            "system": machine["system"],
            "cpu": {"brand_raw": machine["cpu"], "count": machine["cpu_count"]},
        },
        "commit_info": {
            "id": commit.get("id"),
            "time": commit.get("time"),
            "author_time": commit.get("time"),
            "dirty": commit.get("dirty", False),
            "project": None,
            "branch": commit.get("branch"),
        },
        "benchmarks": benchmarks,
        "datetime": run["created"],
        "version": "5.1.0",
    }


def to_github_benchmark(run: RunFile) -> list[dict[str, Any]]:
    """github-action-benchmark's ``customSmallerIsBetter`` entries: p50 of each lower-is-better
    metric (time, energy, errors), with p10..p90 as its range."""
    entries = []
    for item in run["items"]:
        for metric in item["metrics"]:
            summary = metric.get("summary") or {}
            value = summary.get("p50", summary.get("mean"))
            if value is None or direction(metric) != LOWER:
                continue
            entry = {
                "name": f"{item['nodeid']} {metric['type']} {metric['metric']}",
                "unit": metric["unit"],
                "value": value,
                "extra": f"n={metric['num_runs']}",
            }
            if summary.get("p10") is not None and summary.get("p90") is not None:
                entry["range"] = f"p10 {summary['p10']:.6g} .. p90 {summary['p90']:.6g}"
            entries.append(entry)
    return entries


def to_pytorch_oss(run: RunFile) -> list[dict[str, Any]]:
    """The PyTorch OSS benchmark database's records: one per item and metric, every sample in
    ``benchmark_values`` (the database's own jobs keep one value per job), the item's runtime
    and delegates as the model's backend, the device as the runner."""
    machine = run["machine"]
    records = []
    for item in run["items"]:
        case: Mapping[str, Any] = item.get("case") or {}
        device: Mapping[str, Any] = item.get("device") or {}
        backend: Mapping[str, Any] = (item.get("extra") or {}).get("backend") or {}
        on_host = device.get("kind") == "host"  # the machine's CPU is the device's
        for metric in item["metrics"]:
            summary = metric.get("summary") or {}
            records.append(
                {
                    "benchmark": {
                        "name": "pytest-aibench",
                        "mode": "inference",
                        "extra_info": {"nodeid": item["nodeid"], "spec": case.get("spec")},
                    },
                    "model": {
                        "name": case.get("model"),
                        "type": case.get("framework"),
                        "backend": _backend_name(backend),
                        "extra_info": {
                            "test": case.get("identifier"),
                            "md5": case.get("model_md5"),
                        },
                    },
                    "metric": {
                        "name": f"{metric['type']} {metric['metric']}({metric['unit']})",
                        "benchmark_values": list(metric["values"]),
                        "target_value": None,
                        "extra_info": {"unit": metric["unit"], "p50": summary.get("p50")},
                    },
                    "runners": [
                        {
                            "name": device.get("name") or machine["node"],
                            "type": device.get("kind"),
                            "cpu_info": machine["cpu"] if on_host else None,
                            "cpu_count": machine["cpu_count"] if on_host else None,
                            "extra_info": {"id": device.get("id"), "os": device.get("os")},
                        }
                    ],
                }
            )
    return records


def _backend_name(backend: Mapping[str, Any]) -> str | None:
    """``cpu``, or with the delegates a program uses: ``cpu (XnnpackBackend)``."""
    name = backend.get("name")
    delegates = [d for d in backend.get("delegates") or [] if not str(d).startswith("none")]
    return f"{name} ({', '.join(dict.fromkeys(delegates))})" if name and delegates else name
