"""Spec text as file and folder names: the one place a name from a spec becomes part of a path.

Every path the plugin builds from text it did not choose (a model's name and format, a test's
identifier, a file name, a save name, a reporter folder, a trace name) is made of components that
went through :func:`path_component`. It keeps FAI-PEP's file-name rule (spaces, slashes, back
slashes and colons become dashes; only letters, digits, ``_``, ``.`` and ``-`` stay), so FAI-PEP's
reporter trees keep their shape, and adds what that rule lacks: a result is never empty, never
``.`` or ``..``, never starts with ``-`` (a program would read it as an option) and fits in one
file name, so it can neither climb out of its folder nor name the folder itself. Pure.
"""

from __future__ import annotations

import hashlib
import re

# Bytes, not characters: file systems limit a name to 255 bytes; leave room for the suffixes
# and temporary prefixes the writers add (".name.XXXX.part").
_MAX_BYTES = 200
_SEPARATORS = re.compile(r"[ \\:/]")
_UNSAFE = re.compile(r"[^\w.\-]")


class UnsafeName(ValueError):
    """Text that maps to no usable file name (empty, or only dots and dashes)."""


def path_component(text: str, what: str) -> str:
    """``text`` as one safe path component, or :class:`UnsafeName` naming ``what`` it was."""
    name = _UNSAFE.sub("", _SEPARATORS.sub("-", text))
    if not name.strip(".-_"):
        raise UnsafeName(
            f"{what} {text!r} cannot name a file or folder: it keeps no letter or digit once "
            "the characters a file name cannot hold are dropped. Use letters, digits, '_', '.' "
            "or '-'"
        )
    if name.startswith("-"):
        name = "_" + name[1:]
    return _bounded(name)


def _bounded(name: str) -> str:
    """A name over the length limit, cut, with a digest of the whole so cut names stay apart."""
    encoded = name.encode("utf-8")
    if len(encoded) <= _MAX_BYTES:
        return name
    digest = hashlib.sha1(encoded, usedforsecurity=False).hexdigest()[:12]
    head = encoded[: _MAX_BYTES - 13].decode("utf-8", errors="ignore")
    return f"{head}-{digest}"
