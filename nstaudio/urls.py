"""Whether a path is an fsspec URL (``s3://``, ``file://``, ...): what local files and batch storage both ask."""

import re

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path):
    """True if ``path`` is a URL (``scheme://...``), not a local path."""
    return isinstance(path, str) and _URL.match(path) is not None


def local_path_hint(path):
    """What to add to "no such file" for ``path``: where URLs work, if it is one ('' if not). Only
    batches read and write URLs; elsewhere a URL is a local path that does not exist."""
    return " (URLs work in `nstaudio batch` and `nstaudio.batch`; here give a local path)" if is_url(path) else ""
