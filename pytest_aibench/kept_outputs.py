"""An item's outputs kept in a file while the run goes on, for the agreement across frameworks
when it ends (verdicts/agreement.py, which only compares): items may run in other xdist
workers. The one place those files are written, read back and removed."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .records import ItemRecord


def keep(folder: Path, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Keep an item's outputs for the end of the run; what its record says about them."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"outputs-{secrets.token_hex(8)}.npz"
    names = list(outputs)
    np.savez(path, *(np.asarray(outputs[name]) for name in names))
    return {"file": str(path), "names": names}


def _kept(item: ItemRecord) -> Mapping[str, Any] | None:
    kept = (item.get("extra") or {}).get("outputs")
    return kept if isinstance(kept, Mapping) and kept.get("file") else None


def read(item: ItemRecord) -> dict[str, Any] | None:
    """The item's kept outputs by name, as the framework gave them; ``None`` if none were."""
    import numpy as np

    kept = _kept(item)
    if kept is None:
        return None
    with np.load(kept["file"]) as arrays:
        values = [arrays[f"arr_{index}"] for index in range(len(kept["names"]))]
    return dict(zip(kept["names"], values, strict=True))


def discard(items: Iterable[ItemRecord]) -> None:
    """The files go; each record keeps its output names."""
    for item in items:
        if (kept := _kept(item)) is not None:
            Path(kept["file"]).unlink(missing_ok=True)
            item["extra"]["outputs"] = {"names": kept["names"]}
