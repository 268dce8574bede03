"""Where the lab's store is: a SQLite file of this machine or a PostgreSQL server's URL, and
how messages show it (never with its password). Light: SQLAlchemy is imported only to parse a
URL for a message."""

from __future__ import annotations

from pathlib import Path

# Where a location is a server's URL rather than a file; what each scheme is opened with.
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
Location = str | Path
HISTORY_SPOOL = "history-spool"  # runs a store could not take, under the storage folder
_OFF = ("off", "no", "none", "false", "0")


def history_location(history: str | None, storage: Path) -> Location | None:
    """The store every run is appended to: ``history`` (--aibench-history: a file, or a
    server's URL), else history.sqlite in the storage folder; ``None`` when turned off."""
    if history and history.strip().lower() in _OFF:
        return None
    return location(history) if history else storage / "history.sqlite"


def url_of(location: Location) -> str:
    """The SQLAlchemy URL of a store: a file path for SQLite, or a server URL as given."""
    scheme, found, rest = str(location).partition("://")
    if found and scheme in _DRIVERS:
        return f"{_DRIVERS[scheme]}://{rest}"
    if found and not scheme.startswith(("postgresql+", "sqlite")):
        raise ValueError(
            f"history store {shown(location)}: only postgresql:// URLs and SQLite files are "
            "supported"
        )
    if found:
        return str(location)
    return f"sqlite:///{Path(location).expanduser()}"


def location(text: str) -> Location:
    """What --aibench-history, ``--db`` or $AIBENCH_HISTORY names: a server's URL as it is,
    anything else a file path."""
    return text if "://" in text else Path(text).expanduser()


def is_server(location: Location) -> bool:
    """A store on a server (shared by a lab), not a file of this machine."""
    return not url_of(location).startswith("sqlite")


def exists(location: Location) -> bool:
    """Whether there is a store to read (a server is asked when it is opened)."""
    return is_server(location) or Path(url_of(location).removeprefix("sqlite:///")).is_file()


def shown(location: Location) -> str:
    """The location as messages show it: never with its password."""
    if "://" not in str(location):
        return str(location)
    from sqlalchemy.engine import make_url

    try:
        return make_url(str(location)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say only its scheme
        return str(location).split("://", 1)[0] + "://..."


def problem(exc: BaseException) -> str:
    """An error in one line: the database's own message, not SQLAlchemy's wrapping of it."""
    from sqlalchemy.exc import DBAPIError

    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return " ".join(str(cause).split()) or type(cause).__name__
