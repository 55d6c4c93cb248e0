"""Names that become parts of file names: checked once, in one place.

Entity type names reach the workspace's folders (``entities/<type>/``) and the names of
checkpoint and export files, so a name from a config must be one portable path
component: ``../../x``, ``a/b``, NUL, a 10 kB name or ``con`` never escape a folder or
fail deep inside a write.
"""

from __future__ import annotations

import re

from ember.errors import ConfigError

# names that reach file and folder names (entity types: entities/<type>/, checkpoint and
# export files named after them): one portable path component, never a way out
_NAME_OK = re.compile(r"\w([\w.+ -]*[\w.+-])?")  # \w: letters and digits of any script, and _
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_NAME = 100


def check_path_name(name, where: str) -> str:
    """``name`` if it is safe as a file-name part, else a `ConfigError` naming ``where``:
    letters and digits (any script), ``_``, and ``. + -`` and inner spaces (not first), at most
    ``MAX_NAME`` characters, no ``..``, not a name Windows reserves (``con``, ``nul``...)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: an entity type name must be a non-empty string")
    shown = repr(name if len(name) <= 40 else name[:40] + "...")
    if len(name) > MAX_NAME:
        raise ConfigError(f"{where}: entity type name {shown} is longer than {MAX_NAME} characters")
    if not _NAME_OK.fullmatch(name) or ".." in name or name.split(".")[0].lower() in _RESERVED:
        raise ConfigError(
            f"{where}: entity type name {shown} cannot be used: it becomes part of file names, so it "
            "may hold only letters, digits, _ . + - and inner spaces (not first), no '..', and "
            "not a reserved device name (con, nul, com1, ...)"
        )
    return name
