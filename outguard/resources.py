"""Where the files outguard's commands read live: the source tree when running from a
checkout (or an editable install), else the ``share/outguard`` directory a wheel installs
under the environment's prefix (``[tool.setuptools.data-files]`` in pyproject.toml).

* ``dialplan``: ``outguard.conf``, the samples and the sandbox PBX's configuration
* ``sipp``: the SIPp scenarios of the sandbox's phone and carrier (``tests/sipp`` in the
  source tree)
"""

from __future__ import annotations

import sys
from pathlib import Path

from outguard.errors import OutguardError

SOURCE_TREE = Path(__file__).resolve().parents[1]
#: name -> (path in the source tree, path under <prefix>/share/outguard)
LOCATIONS = {
    "dialplan": ("dialplan", "dialplan"),
    "sipp": ("tests/sipp", "sipp"),
}


class ResourceMissing(OutguardError):
    """A file the command needs is in neither the source tree nor the installed data."""

    error_id = "resource_missing"


def resource_dir(name: str, *, source: Path = SOURCE_TREE, prefix: str | None = None) -> Path:
    """The directory holding resource ``name``; ResourceMissing names both places tried."""
    in_tree, shared = LOCATIONS[name]
    tried = [source / in_tree]
    for base in dict.fromkeys([prefix or sys.prefix, sys.base_prefix, "/usr/local", "/usr"]):
        tried.append(Path(base) / "share" / "outguard" / shared)
    for path in tried:
        if path.is_dir():
            return path
    raise ResourceMissing(
        f"outguard's {name} files are missing (looked in {', '.join(map(str, tried))}): "
        "reinstall outguard from its wheel, or run it from a source checkout")
