"""outguard: outbound call screening for Asterisk."""

import importlib.metadata


def version() -> str:
    """The outguard version installed ("0" when run from a tree that is not installed)."""
    try:
        return importlib.metadata.version("outguard")
    except importlib.metadata.PackageNotFoundError:
        return "0"
