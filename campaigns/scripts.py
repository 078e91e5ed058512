"""A campaign's script with the lead's fields filled in: `{first_name}`, `{balance}`, a custom
field by its column name (`{Plan}`), and `{agent}`, `{seller}`.

Only plain names are substituted: `str.format` would also follow `{lead.__class__}` or index
into values, which a manager's text must never be able to do. A placeholder the lead has no
value for stays as written, so the script preview shows what a call would be missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# The lead's own columns a script may name (custom fields come on top, by their column name).
LEAD_FIELDS = (
    "first_name",
    "last_name",
    "phone_e164",
    "email",
    "account_ref",
    "balance",
    "due_date",
    "appointment_at",
    "state",
)


def render(template: str, fields: Mapping[str, Any]) -> str:
    """`template` with each `{name}` replaced by `fields[name]` (stripped of spaces around the
    name); unknown names and empty values leave the placeholder as it was."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        found = fields.get(name)
        return match.group(0) if found is None or found == "" else str(found)

    return PLACEHOLDER.sub(value, template)


def lead_fields(
    lead: Any, *, agent: str | None = None, seller: str | None = None
) -> dict[str, Any]:
    """What a script can name for this lead (an ORM `Lead` or anything with its attributes):
    custom fields first, so a custom column never hides one of the lead's own."""
    fields: dict[str, Any] = dict(getattr(lead, "custom_fields", None) or {})
    for name in LEAD_FIELDS:
        fields[name] = getattr(lead, name, None)
    fields["phone"] = fields["phone_e164"]
    if agent is not None:
        fields["agent"] = agent
    if seller is not None:
        fields["seller"] = seller
    return fields
