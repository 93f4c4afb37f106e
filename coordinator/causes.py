"""Error causes kept whole: a tool's multi-line message on one line, cut only when huge.

The real cause is often not the first or last line (Ansible's "Validation of arguments
failed:" is followed by "missing required arguments: ..."; git ends with "and the repository
exists."), so every line is kept, joined, and only text past a generous limit is cut, with
where to read the rest.
"""

from __future__ import annotations

MESSAGE_LIMIT = 2000
"""Characters of a cause kept in an error line."""


def whole_cause(text: str, *, see: str | None = None, limit: int | None = MESSAGE_LIMIT) -> str:
    """All non-blank lines of `text` joined by spaces; past `limit` (None: never), cut and pointing at `see`."""
    joined = " ".join(line.strip() for line in str(text).strip().splitlines() if line.strip())
    if limit is None or len(joined) <= limit:
        return joined
    where = f"see {see}" if see else f"cut at {limit} characters"
    return f"{joined[:limit]}… ({where})"
