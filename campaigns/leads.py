"""Lead rows from CSV: encoding and delimiter detection, header mapping, validation and
phone-number analysis. Pure: bytes and strings in, lead rows or row errors out."""

from __future__ import annotations

import codecs
import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import phonenumbers
import regex
from phonenumbers import PhoneNumberType, timezone
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from campaigns.us_area_codes import AREA_CODE_STATES

FIELDS = (
    "phone",
    "first_name",
    "last_name",
    "email",
    "account_ref",
    "balance",
    "due_date",
    "appointment_at",
    "priority",
    "consent",
)
HEADER_ALIASES: dict[str, str] = {
    alias: name
    for name, aliases in {
        "phone": (
            "phone",
            "phonenumber",
            "phoneno",
            "mobile",
            "mobilenumber",
            "cell",
            "cellphone",
            "tel",
            "telephone",
            "number",
            "msisdn",
            "contactnumber",
            "primaryphone",
        ),
        "first_name": ("firstname", "first", "givenname", "forename", "fname"),
        "last_name": ("lastname", "last", "surname", "familyname", "lname"),
        "email": ("email", "emailaddress", "mail"),
        "account_ref": (
            "account",
            "accountref",
            "accountnumber",
            "accountno",
            "accountreference",
            "acct",
        ),
        "balance": ("balance", "amountdue", "amount", "balancedue", "outstanding"),
        "due_date": ("duedate", "due"),
        "appointment_at": ("appointment", "appointmentat", "appointmenttime", "appointmentdate"),
        "priority": ("priority",),
        "consent": ("consent", "consentautomated", "optin", "automatedconsent"),
    }.items()
    for alias in aliases
}
DELIMITERS = (",", ";", "\t", "|")
# Values are stored as written, whatever their first character (`-- call after 5pm` is a
# note, not a formula): exports neutralise formula-looking cells (campaigns.exports). Only
# lengths are checked, against the columns' own (a longer value would fail the whole import on
# PostgreSQL, which enforces them); custom fields, kept as JSON, against MAX_TEXT.
MAX_TEXT = 255
TEXT_LIMITS = {"first_name": 120, "last_name": 120, "email": 254, "account_ref": 80}
TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}
NOT_DIALABLE_TYPES = frozenset({"premium_rate", "shared_cost", "voicemail", "pager", "uan"})
US_STATES = {
    "Alabama": "AL",
    "Alaska": "AK",
    "Arizona": "AZ",
    "Arkansas": "AR",
    "California": "CA",
    "Colorado": "CO",
    "Connecticut": "CT",
    "Delaware": "DE",
    "Florida": "FL",
    "Georgia": "GA",
    "Hawaii": "HI",
    "Idaho": "ID",
    "Illinois": "IL",
    "Indiana": "IN",
    "Iowa": "IA",
    "Kansas": "KS",
    "Kentucky": "KY",
    "Louisiana": "LA",
    "Maine": "ME",
    "Maryland": "MD",
    "Massachusetts": "MA",
    "Michigan": "MI",
    "Minnesota": "MN",
    "Mississippi": "MS",
    "Missouri": "MO",
    "Montana": "MT",
    "Nebraska": "NE",
    "Nevada": "NV",
    "New Hampshire": "NH",
    "New Jersey": "NJ",
    "New Mexico": "NM",
    "New York": "NY",
    "North Carolina": "NC",
    "North Dakota": "ND",
    "Ohio": "OH",
    "Oklahoma": "OK",
    "Oregon": "OR",
    "Pennsylvania": "PA",
    "Rhode Island": "RI",
    "South Carolina": "SC",
    "South Dakota": "SD",
    "Tennessee": "TN",
    "Texas": "TX",
    "Utah": "UT",
    "Vermont": "VT",
    "Virginia": "VA",
    "Washington": "WA",
    "West Virginia": "WV",
    "Wisconsin": "WI",
    "Wyoming": "WY",
    "Washington D.C.": "DC",
}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported; nothing was stored."""


class RowError(NamedTuple):
    row: int
    field: str
    value: str
    reason: str


class PhoneFacts(NamedTuple):
    e164: str
    phone_type: str
    region: str
    state: str | None
    time_zones: tuple[str, ...]


@dataclass(slots=True)
class LeadRow:
    row: int
    phone: PhoneFacts
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    account_ref: str | None = None
    balance: Decimal | None = None
    due_date: dt.date | None = None
    appointment_at: dt.datetime | None = None
    priority: int = 0
    consent: bool = False
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnMap:
    fields: dict[str, int]  # our field -> column index
    custom: dict[str, int]  # unmapped header -> column index
    width: int


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the sample decodes as such, else cp1252, else Latin-1."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # final=False tolerates a multi-byte character cut at the end of the sample.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the header and the next lines into the same number of cells."""
    header = lines[0]
    best, best_score = ",", -1
    for delimiter in DELIMITERS:
        count = header.count(delimiter)
        if count == 0:
            continue
        consistent = sum(1 for line in lines[1:] if line.count(delimiter) == count)
        score = consistent * 1000 + count
        if score > best_score:
            best, best_score = delimiter, score
    return best


def header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def map_columns(headers: list[str], overrides: dict[str, str] | None = None) -> ColumnMap:
    """Map header names to lead fields; `overrides` maps a field to a header name, or to ""
    for a field the file does not have (no column is then mapped to it by its name)."""
    overrides = overrides or {}
    positions = {name.strip(): i for i, name in enumerate(headers)}
    fields: dict[str, int] = {}
    for name, column in overrides.items():
        if name not in FIELDS:
            raise ImportFileError(
                f"--map {name}={column}: unknown field {name!r}; fields are {', '.join(FIELDS)}"
            )
        if not column:
            continue
        if column not in positions:
            raise ImportFileError(
                f"--map {name}={column}: no column {column!r}; columns are "
                + ", ".join(repr(h) for h in headers)
            )
        fields[name] = positions[column]
    for i, name in enumerate(headers):
        target = HEADER_ALIASES.get(header_key(name))
        if target and target not in overrides and target not in fields and i not in fields.values():
            fields[target] = i
    if "phone" not in fields:
        raise ImportFileError(
            "no phone column: name one 'phone' (or mobile, tel, number ...) or pass "
            "--map phone=COLUMN; columns are " + ", ".join(repr(h) for h in headers)
        )
    used = set(fields.values())
    custom = {name.strip(): i for i, name in enumerate(headers) if i not in used and name.strip()}
    return ColumnMap(fields, custom, len(headers))


def _tail_digits(node: list[Any]) -> int:
    """How many trailing positions of a parsed number pattern accept any digit."""
    import re._constants as c

    any_digit = [(c.IN, [(c.CATEGORY, c.CATEGORY_DIGIT)])]
    count = 0
    for op, av in reversed(node):
        if op is c.MAX_REPEAT and av[0] == av[1] and list(av[2]) == any_digit:
            count += av[0]
            continue
        if [(op, av)] == any_digit:
            count += 1
            continue
        if op is c.BRANCH:
            return count + min(_tail_digits(list(branch)) for branch in av[1])
        if op is c.SUBPATTERN:
            return count + _tail_digits(list(av[3]))
        break
    return count


NUMBER_DESCS = (
    "general_desc",
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


def _top_level_branches(pattern: str) -> list[str]:
    branches, depth, start = [], 0, 0
    for i, char in enumerate(pattern):
        escaped = i > 0 and pattern[i - 1] == "\\"
        if char == "(" and not escaped:
            depth += 1
        elif char == ")" and not escaped:
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
    branches.append(pattern[start:])
    return branches


@functools.cache
def _pattern_branches(country_code: int) -> tuple[tuple[str | None, Any, int], ...]:
    """Every top-level branch of every number pattern of the country's regions, compiled, with
    its region's leading-digits pattern and how many trailing digits it leaves free."""
    import re._parser as parser

    branches = []
    for region in phonenumbers.region_codes_for_country_code(country_code):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            return ()
        for name in NUMBER_DESCS:
            desc = getattr(metadata, name)
            if desc is None or not desc.national_number_pattern:
                continue
            for branch in _top_level_branches(desc.national_number_pattern):
                tail = _tail_digits(list(parser.parse(branch)))
                branches.append((metadata.leading_digits, regex.compile(branch), tail))
    return tuple(branches)


@functools.cache
def _free_tail(country_code: int, lead_digits: str) -> int:
    """How many trailing digits no pattern looks at, for numbers starting with `lead_digits`.

    Numbers of the same length that differ only there share validity, type and region, so
    the cache keyed on the rest is exact. Only the regions and pattern branches that can match
    a number starting with `lead_digits` count (a partial match decides), which keeps the
    significant prefix short: for US geographic numbers it is the area code and one digit."""
    tail = 99
    for leading, branch, branch_tail in _pattern_branches(country_code):
        if leading is not None and not re.match(leading, lead_digits):
            continue
        if branch_tail < tail and branch.fullmatch(lead_digits, partial=True):
            tail = branch_tail
    return 0 if tail == 99 else tail


NANP_FORMATTING = re.compile(r"[\s().\-/]")
# Every character NANP_FORMATTING matches (a test checks all of Unicode): str.translate drops
# them in half the time re.sub takes, and every row of an import pays it.
FORMATTING_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ().-/\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
DROP_FORMATTING = str.maketrans("", "", FORMATTING_CHARS)
# Texts that took phonenumbers' own parser (~130 µs), with its verdict: lists repeat their
# junk ("n/a", "unknown") and their foreign numbers. Bounded, so memory stays flat.
SLOW_PATH_MEMO = 20_000


@dataclass(frozen=True, slots=True)
class _NumberClass:
    """What the numbering plan says of every number sharing a significant prefix."""

    phone_type: str
    region: str
    geographic: bool
    zones: tuple[str, ...]  # the country's zones, for numbers that are not geographic


def _zone_depths() -> dict[str, int]:
    depths: dict[str, int] = {}
    for key in TIMEZONE_DATA:
        depths[key[:4]] = max(depths.get(key[:4], 0), len(key))
    return depths


ZONE_DEPTHS = _zone_depths()


@functools.cache
def _zones_by_prefix(significant_digits: str) -> tuple[str, ...]:
    # The longest-prefix lookup phonenumbers.timezone does, without building a number object;
    # callers pass only as many digits as the longest key under the same 4 digits has, so the
    # cache is exact and small.
    for length in range(min(TIMEZONE_LONGEST_PREFIX, len(significant_digits)), 0, -1):
        zones = TIMEZONE_DATA.get(significant_digits[:length])
        if zones is not None:
            return tuple(z for z in zones if "/" in z and not z.startswith("Etc/"))
    return ()


class PhoneAnalyzer:
    """E.164, type, region, state and time zones of raw numbers, for one default region.

    phonenumbers costs ~130 µs a number. Validity, type and region are cached per number
    prefix, keeping only the leading digits some pattern of the numbering plan looks at (so
    the cache is exact); time zones come from the same prefix table phonenumbers reads. A
    million-row list then costs a few thousand full analyses."""

    def __init__(self, default_region: str) -> None:
        region = default_region.upper()
        if phonenumbers.country_code_for_region(region) == 0:
            raise ImportFileError(f"region {default_region!r} is not an ISO country code")
        self.region = region
        self.country_code = phonenumbers.country_code_for_region(region)
        self._shared: dict[
            tuple[int, int, str], tuple[str, str, str | None, tuple[str, ...]] | str
        ] = {}
        self._classes: dict[tuple[int, int, str], _NumberClass | str] = {}
        self._key_digits: dict[tuple[int, str, int], int] = {}
        self._parsed: dict[str, PhoneFacts | str] = {}

    def analyse(self, raw: str) -> PhoneFacts | str:
        """Facts of a dialable number, or the reason it is not one."""
        text = raw.strip()
        if not text:
            return "empty phone number"
        if len(text) > 40:
            return "too long for a phone number"
        if self.country_code == 1:
            digits = text.translate(DROP_FORMATTING)
            bare = digits.lstrip("+")
            if bare.isdigit():
                # The NANP fast path: +1NXXNXXXXXX, 1NXXNXXXXXX or NXXNXXXXXX.
                if len(bare) == 11 and bare[0] == "1":
                    return self._facts(1, bare[1:])
                if len(bare) == 10 and not digits.startswith("+"):
                    return self._facts(1, bare)
        facts = self._parsed.get(text)
        if facts is None:
            if len(self._parsed) >= SLOW_PATH_MEMO:
                self._parsed.clear()
            facts = self._parsed[text] = self._parse(text)
        return facts

    def _parse(self, text: str) -> PhoneFacts | str:
        try:
            number = phonenumbers.parse(text, self.region)
        except phonenumbers.NumberParseException as error:
            return f"not a phone number ({error._msg})"
        if number.extension:
            return "has an extension: the dialer cannot reach extensions"
        return self._facts(number.country_code, phonenumbers.national_significant_number(number))

    def _facts(self, country_code: int, national: str) -> PhoneFacts | str:
        # How many leading digits decide the facts depends only on the first three and the
        # length: worked out once per such prefix, it leaves two dict lookups per number.
        where = (country_code, national[:3], len(national))
        digits = self._key_digits.get(where)
        if digits is None:
            digits = self._key_digits[where] = max(
                _significant_digits(country_code, national), _zone_digits(country_code, national)
            )
        key = (country_code, len(national), national[:digits])
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = self._describe(country_code, national)
        if isinstance(shared, str):
            return shared
        # tuple.__new__ skips the Python-level __new__ namedtuple generates (once per row).
        return tuple.__new__(PhoneFacts, (f"+{country_code}{national}", *shared))

    def _describe(
        self, country_code: int, national: str
    ) -> tuple[str, str, str | None, tuple[str, ...]] | str:
        """What every number sharing this one's significant digits has in common."""
        # Area codes that span time zones have zones per exchange: the numbering plan's verdict,
        # the costly part, is still shared by the whole prefix the patterns look at.
        significant = _significant_digits(country_code, national)
        class_key = (country_code, len(national), national[:significant])
        number_class = self._classes.get(class_key)
        if number_class is None:
            number_class = self._classes[class_key] = _classify(country_code, national)
        if isinstance(number_class, str):
            return number_class
        e164_digits = f"{country_code}{national}"
        zones = (
            _zones_by_prefix(e164_digits[: max(4, ZONE_DEPTHS.get(e164_digits[:4], 0))])
            if number_class.geographic
            else number_class.zones
        )
        state = None
        if number_class.region == "US" and number_class.geographic:
            state = _us_state(national[:3])
        return number_class.phone_type, number_class.region, state, zones


def _significant_digits(country_code: int, national: str) -> int:
    """The leading digits of a national number that its validity, type and region depend on."""
    return max(len(national) - _free_tail(country_code, national[:3]), 3)


def _zone_digits(country_code: int, national: str) -> int:
    """The leading digits of a national number that its time zones depend on."""
    code = str(country_code)
    return max(4, ZONE_DEPTHS.get((code + national)[:4], 0)) - len(code)


def _classify(country_code: int, national: str) -> _NumberClass | str:
    number = phonenumbers.parse(f"+{country_code}{national}")
    if not phonenumbers.is_valid_number(number):
        return "not a valid number"
    number_type = phonenumbers.number_type(number)
    phone_type = TYPE_NAMES.get(number_type, "unknown")
    if phone_type in NOT_DIALABLE_TYPES:
        return f"{phone_type.replace('_', ' ')} numbers are not dialed"
    geographic = phonenumbers.is_number_type_geographical(number_type, country_code)
    zones = (
        ()
        if geographic
        else tuple(
            z
            for z in timezone.time_zones_for_number(number)
            if "/" in z and not z.startswith("Etc/")
        )
    )
    region = phonenumbers.region_code_for_number(number) or "ZZ"
    return _NumberClass(phone_type, region, geographic, zones)


def _us_state(area_code: str) -> str | None:
    # Area codes do not cross state lines. The table covers every area code of the installed
    # phonenumbers (a test checks it); the geocoder, ~100 MB loaded, only answers for one
    # added by a newer phonenumbers before the table is regenerated.
    state = AREA_CODE_STATES.get(area_code)
    if state is None:
        from phonenumbers import geocoder

        place = geocoder.description_for_number(phonenumbers.parse(f"+1{area_code}2345678"), "en")
        abbreviated = re.search(r", ([A-Z]{2})$", place)
        state = US_STATES.get(place) or (abbreviated.group(1) if abbreviated else None)
    return state


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
AMOUNT_NOISE = re.compile(r"[\s$€£,]")
PRIORITY = re.compile(r"-?\d{1,6}")
TRUE_WORDS = frozenset({"1", "y", "yes", "true", "t", "x", "on"})
FALSE_WORDS = frozenset({"", "0", "n", "no", "false", "f", "off"})


def _parse_date(text: str, day_first: bool) -> dt.date:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.date.fromisoformat(text)
    match = re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", text)
    if not match:
        raise ValueError
    a, b, year = (int(g) for g in match.groups())
    day, month = (a, b) if day_first else (b, a)
    return dt.date(year, month, day)


class RowValidator:
    """Turns the cells of one CSV row into a LeadRow, or the first problem found in it."""

    def __init__(self, columns: ColumnMap, analyzer: PhoneAnalyzer) -> None:
        self.columns = columns
        self.analyzer = analyzer
        self.day_first = analyzer.region not in {"US", "CA", "PH"}
        self.phone_index = columns.fields["phone"]
        self.text_fields = [
            (name, columns.fields[name], limit)
            for name, limit in TEXT_LIMITS.items()
            if name in columns.fields
        ]
        self.custom_fields = list(columns.custom.items())
        # Looked up once here rather than in the column map for every row.
        self.balance_index = columns.fields.get("balance")
        self.due_date_index = columns.fields.get("due_date")
        self.appointment_index = columns.fields.get("appointment_at")
        self.priority_index = columns.fields.get("priority")
        self.consent_index = columns.fields.get("consent")
        self.typed_fields = any(
            index is not None
            for index in (
                self.balance_index,
                self.due_date_index,
                self.appointment_index,
                self.priority_index,
                self.consent_index,
            )
        )

    def validate(self, row: int, cells: list[str]) -> LeadRow | RowError:
        if len(cells) != self.columns.width:
            return RowError(
                row,
                "*",
                f"{len(cells)} cells",
                f"the header has {self.columns.width} columns; this row has {len(cells)}",
            )
        raw_phone = cells[self.phone_index]
        phone = self.analyzer.analyse(raw_phone)
        if isinstance(phone, str):
            return RowError(row, "phone", raw_phone, phone)
        lead = LeadRow(row, phone)
        for name, index, limit in self.text_fields:
            value = cells[index].strip()
            if not value:
                continue
            if len(value) > limit:
                return RowError(row, name, value, f"{len(value)} characters; at most {limit} fit")
            if name == "email" and not EMAIL.fullmatch(value):
                return RowError(row, name, value, "not an e-mail address")
            setattr(lead, name, value)
        custom = lead.custom_fields
        for name, index in self.custom_fields:
            value = cells[index].strip()
            if value:
                if len(value) > MAX_TEXT:
                    return RowError(
                        row, name, value, f"{len(value)} characters; at most {MAX_TEXT} fit"
                    )
                custom[name] = value
        return self._typed_fields(row, cells, lead) if self.typed_fields else lead

    def _typed_fields(self, row: int, cells: list[str], lead: LeadRow) -> LeadRow | RowError:
        if self.balance_index is not None and (value := cells[self.balance_index].strip()):
            try:
                # Decimal refuses every character AMOUNT_NOISE removes, so an amount it reads
                # as it is (most are) reads the same without them: the substitution is only
                # paid for the amounts that have some.
                lead.balance = Decimal(value)
            except InvalidOperation:
                try:
                    lead.balance = Decimal(AMOUNT_NOISE.sub("", value))
                except InvalidOperation:
                    return RowError(row, "balance", value, "not an amount (e.g. 1234.50)")
            if not lead.balance.is_finite() or abs(lead.balance) >= 10**12:
                return RowError(row, "balance", value, "not a plausible amount")
        if self.due_date_index is not None and (value := cells[self.due_date_index].strip()):
            try:
                lead.due_date = _parse_date(value, self.day_first)
            except ValueError:
                order = "DD/MM/YYYY" if self.day_first else "MM/DD/YYYY"
                return RowError(row, "due_date", value, f"not a date (YYYY-MM-DD or {order})")
        if self.appointment_index is not None and (value := cells[self.appointment_index].strip()):
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                return RowError(
                    row, "appointment_at", value, "not a date and time (YYYY-MM-DD HH:MM[+02:00])"
                )
            if moment.tzinfo is None:
                if not lead.phone.time_zones:
                    return RowError(row, "appointment_at", value, "no offset and no known zone")
                from zoneinfo import ZoneInfo

                moment = moment.replace(tzinfo=ZoneInfo(lead.phone.time_zones[0]))
            lead.appointment_at = moment
        if self.priority_index is not None and (value := cells[self.priority_index].strip()):
            if not PRIORITY.fullmatch(value):
                return RowError(row, "priority", value, "not a whole number")
            lead.priority = int(value)
        if self.consent_index is not None:
            value = cells[self.consent_index].strip().lower()
            if value in TRUE_WORDS:
                lead.consent = True
            elif value not in FALSE_WORDS:
                return RowError(row, "consent", value, "not yes/no")
        return lead
