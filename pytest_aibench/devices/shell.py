"""The one builder of command lines for a device's shell (adb shell, ssh): every word quoted.

Remote devices take a single string that their shell parses, so spec text that reaches it (a
program's arguments, a folder, an environment variable's value) is quoted here, and a variable's
*name*, which a shell cannot quote, must be a plain identifier.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

from ..errors import DeviceError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def shell_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    timeout: float,
    under: Sequence[str] | None = None,
) -> str:
    """``mkdir -p CWD && cd CWD && NAME=VALUE ... [UNDER...] timeout -k 2 T ARGV...``: the
    command runs in ``cwd`` with ``env`` added, under ``under`` (the device's ``time -v``), and
    the device's ``timeout`` ends it even if we lose the link."""
    for name in env:
        if not _NAME.match(name):
            raise DeviceError(
                f"environment variable name {name!r} is not a plain name "
                "(letters, digits and '_', not starting with a digit); fix it "
                "in the spec's env"
            )
    folder = shlex.quote(cwd)
    assignments = "".join(f"{name}={shlex.quote(value)} " for name, value in env.items())
    wrapper = f"{shlex.join(under)} " if under else ""
    return (
        f"mkdir -p {folder} && cd {folder} && {assignments}{wrapper}"
        f"timeout -k 2 {timeout:g} {shlex.join(argv)}"
    )
