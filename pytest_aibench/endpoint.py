"""Where a remote reporter sends a run (``--aibench-remote-reporter URL[|category]``). Light:
the option's check parses it before anything runs; reporting/remote.py sends."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Endpoint:
    url: str
    category: str = "pytest-aibench"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``URL`` or FAI-PEP's ``URL|category``; ``https://`` is assumed without a scheme."""
        url, _, category = text.partition("|")
        url = url.strip() if "://" in url else "https://" + url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"expected an http(s) URL such as https://results.example/store, found {text!r}"
            )
        return cls(url, category.strip() or cls.category)

    @property
    def shown(self) -> str:
        """The URL without any user:password part, for messages."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
