"""Agents' call scripts: `{first_name}`-style placeholders filled from the lead.

A plain pattern, not str.format: a script is text a manager types, and format's attribute
and index lookups ({lead.__class__}) have no place in it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from campaigns.models import Lead

PLACEHOLDER = re.compile(r"\{([^{}\n]{1,80})\}")
# What a script may name besides a lead's custom fields (their CSV column names).
LEAD_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "account_ref",
    "balance",
    "due_date",
    "appointment_at",
    "seller",
)
SAMPLE_VALUES: dict[str, str] = {
    "first_name": "Jane",
    "last_name": "Doe",
    "phone": "+12125550100",
    "email": "jane.doe@example.com",
    "account_ref": "AC-10042",
    "balance": "1234.50",
    "due_date": "2026-12-01",
    "appointment_at": "2026-12-03 10:30",
    "seller": "Acme Insurance",
}


class FilledScript(NamedTuple):
    text: str
    unknown: tuple[str, ...]  # placeholders with no value, left as written


def placeholders(script: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.group(1).strip() for m in PLACEHOLDER.finditer(script)))


def fill(script: str, values: Mapping[str, str]) -> FilledScript:
    """The script with each `{name}` replaced by its value; unknown names stay as written."""
    unknown: dict[str, None] = {}

    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in values:
            return values[name]
        unknown[name] = None
        return match.group(0)

    return FilledScript(PLACEHOLDER.sub(value, script), tuple(unknown))


def lead_values(lead: Lead, seller: str = "") -> dict[str, str]:
    """What a script can show of a lead: its fields, then its custom fields by column name."""
    values = {
        "first_name": lead.first_name or "",
        "last_name": lead.last_name or "",
        "phone": lead.phone_e164,
        "email": lead.email or "",
        "account_ref": lead.account_ref or "",
        "balance": "" if lead.balance is None else f"{lead.balance:.2f}",
        "due_date": "" if lead.due_date is None else lead.due_date.isoformat(),
        "appointment_at": "" if lead.appointment_at is None else lead.appointment_at.isoformat(),
        "seller": seller,
    }
    for name, custom in (lead.custom_fields or {}).items():
        values.setdefault(str(name), str(custom))
    return values
