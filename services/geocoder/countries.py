"""Which country an address is in: a country named at its tail (name or ISO code), else the
countries whose postcode pattern its tail matches. Reads the gazetteer package's country table
(names and postcode patterns of 250 countries), never the postcode files themselves."""

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

# The countries whose postcode file in `countrystatecity-postal-codes` 1.x carries coordinates
# (the other 100 of its 125 files list postcodes without any: DE, FR, JP, IT, ES, NL, ...).
# services/geocoder/tests/test_countries.py checks this list against the package.
WITH_COORDINATES = frozenset(
    [
        "AU",
        "BE",
        "BR",
        "CA",
        "CC",
        "CX",
        "DK",
        "DZ",
        "EC",
        "GB",
        "GR",
        "GU",
        "LK",
        "MD",
        "MT",
        "NF",
        "NZ",
        "PA",
        "PL",
        "PR",
        "SI",
        "SO",
        "US",
        "VI",
    ]
)
# Names people write that the package's table spells otherwise.
ALIASES = {
    "USA": "US",
    "UNITED STATES OF AMERICA": "US",
    "UK": "GB",
    "GREAT BRITAIN": "GB",
    "ENGLAND": "GB",
    "SCOTLAND": "GB",
    "WALES": "GB",
    "NORTHERN IRELAND": "GB",
    "DEUTSCHLAND": "DE",
    "NEDERLAND": "NL",
    "THE NETHERLANDS": "NL",
    "ESPANA": "ES",
    "NIPPON": "JP",
    "AOTEAROA": "NZ",
    "POLSKA": "PL",
    "DANMARK": "DK",
    "BELGIQUE": "BE",
    "BELGIE": "BE",
    "BRASIL": "BR",
    "OSTERREICH": "AT",
    "SCHWEIZ": "CH",
    "SUISSE": "CH",
    "ITALIA": "IT",
}
# Two-letter codes that are also US or Australian state abbreviations ("Dover, DE" is Delaware):
# alone at the tail they name the country only when a postcode of that country comes with them.
STATE_LIKE = frozenset(
    [
        "AL",
        "AR",
        "AS",
        "CA",
        "CO",
        "CT",
        "DE",
        "GA",
        "GU",
        "ID",
        "IL",
        "IN",
        "LA",
        "MA",
        "MD",
        "ME",
        "MN",
        "MO",
        "MP",
        "MS",
        "MT",
        "NC",
        "NE",
        "PA",
        "PR",
        "SC",
        "SD",
        "TN",
        "VA",
        "VI",
        "WA",
    ]
)


def fold(text: str) -> str:
    """Upper case, accents off, punctuation (but hyphens) as spaces, single spaces."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s-]", " ", plain.upper())).strip()


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    postcode: re.Pattern | None


@dataclass(frozen=True)
class Detected:
    """What the address says about its country: the one it names, and the postcodes in its tail
    that each country's pattern accepts (code -> postcode as written)."""

    named: str | None
    postcodes: dict[str, str] = field(default_factory=dict)
    rest: str = ""  # the address without the country named at its tail


@lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    table = resources.files("countrystatecity_postal_codes") / "data" / "countries.json"
    found = {}
    for c in json.loads(table.read_text()):
        pattern = c.get("postalCodeRegex")
        found[c["countryCode"]] = Country(c["countryCode"], c["countryName"], re.compile(pattern) if pattern else None)
    return found


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    names = {fold(c.name): code for code, c in countries().items()}
    return {**names, **ALIASES}


def _named(parts: list[str]) -> str | None:
    """The country the last comma-separated part names, if it names one."""
    last = fold(parts[-1]) if parts else ""
    if last in _names():
        return _names()[last]
    if len(last) == 2 and last in countries() and last not in STATE_LIKE:
        return last
    return None


def _tokens(text: str) -> list[str]:
    """Single words and adjacent pairs of the tail ("SW1A 1AA", "K1A 0B1", "ATD 1010")."""
    words = re.sub(r"[,;]", " ", text.upper()).split()[-5:]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def detect(address: str) -> Detected:
    parts = [p.strip() for p in address.split(",") if p.strip()]
    named = _named(parts)
    if named is None and parts and (code := fold(parts[-1])) in STATE_LIKE and code in countries():
        tail = " ".join(parts[-2:-1])
        pattern = countries()[code].postcode
        if pattern and any(pattern.fullmatch(t) for t in _tokens(tail)):
            named = code  # "…, 00-950 Warszawa, PL" style: the code and its own postcode agree
    rest = ", ".join(parts[:-1]) if named else address
    candidates = [named] if named else sorted(WITH_COORDINATES)
    postcodes: dict[str, str] = {}
    tail = " ".join(rest.split(",")[-2:])
    for code in candidates:
        pattern = countries()[code].postcode if code in countries() else None
        if pattern is None:
            continue
        matched = [t for t in _tokens(tail) if pattern.fullmatch(t)]
        if matched:
            postcodes[code] = max(matched, key=len)  # "SW1A 1AA" over "SW1A"
    return Detected(named, postcodes, rest)
