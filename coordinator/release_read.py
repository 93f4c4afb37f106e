"""Read a stored release record, or say in one line why it cannot be read.

In a team every machine reads the same records. A coordinator older than the one that wrote
a record does not know its newest fields; loading it anyway would drop them at the next save,
so it is refused with the fields named and the fix (upgrade this machine). A record that does
not parse, or whose values are wrong, is named as damaged with the first field at fault.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from coordinator.errors import RecordUnreadable
from coordinator.release import Release


def read_release(raw: str | bytes | dict[str, Any], where: str) -> Release:
    """The release in `raw` (JSON text or a decoded body), stored at `where` (a path or a table row)."""
    try:
        return Release.model_validate_json(raw) if isinstance(raw, (str, bytes)) else Release.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        unknown = sorted({".".join(str(part) for part in error["loc"]) for error in errors
                          if error["type"] == "extra_forbidden"})
        if unknown and len(unknown) == len(errors):
            raise RecordUnreadable(
                f"release record {where} has fields this coordinator does not know ({', '.join(unknown)}): "
                "a newer coordinator wrote it; upgrade coordinator on this machine (every machine of a team "
                "runs the same version)") from None
        first = errors[0]
        field = ".".join(str(part) for part in first["loc"]) or "the record"
        raise RecordUnreadable(f"release record {where} is damaged: {field}: {first['msg']}; restore it from a "
                               "backup or remove it (`coordinator audit verify` shows what the trail holds)") from None
