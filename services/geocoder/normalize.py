"""Address normalization: one cache key for the many ways people write the same address."""

import re
from dataclasses import dataclass

STATES = {
    "QUEENSLAND": "QLD",
    "NEW SOUTH WALES": "NSW",
    "VICTORIA": "VIC",
    "TASMANIA": "TAS",
    "SOUTH AUSTRALIA": "SA",
    "WESTERN AUSTRALIA": "WA",
    "NORTHERN TERRITORY": "NT",
    "AUSTRALIAN CAPITAL TERRITORY": "ACT",
}
STATE_CODES = set(STATES.values())
ABBREVIATIONS = {
    "ST": "STREET",
    "RD": "ROAD",
    "AVE": "AVENUE",
    "AV": "AVENUE",
    "DR": "DRIVE",
    "CT": "COURT",
    "PL": "PLACE",
    "LN": "LANE",
    "HWY": "HIGHWAY",
    "PDE": "PARADE",
    "TCE": "TERRACE",
    "CRES": "CRESCENT",
    "CR": "CRESCENT",
    "BVD": "BOULEVARD",
    "BLVD": "BOULEVARD",
    "CL": "CLOSE",
    "ESP": "ESPLANADE",
    "SQ": "SQUARE",
    "MT": "MOUNT",
    "STH": "SOUTH",
    "NTH": "NORTH",
    "WY": "WAY",
    "GR": "GROVE",
    "CCT": "CIRCUIT",
}
_POSTCODE = re.compile(r"\b(\d{4})\b")


@dataclass(frozen=True)
class ParsedAddress:
    normalized: str
    postcode: str | None
    state: str | None
    locality: str | None


def normalize(address: str) -> str:
    """Upper case, no punctuation, single spaces, abbreviations and state names spelled one way."""
    text = re.sub(r"[^\w\s/-]", " ", address.upper())
    text = re.sub(r"\s+", " ", text).strip()
    for name, code in STATES.items():
        text = re.sub(rf"\b{name}\b", code, text)
    text = re.sub(r"\bAUSTRALIA$", "", text).strip()
    return " ".join(ABBREVIATIONS.get(word, word) for word in text.split())


def parse(address: str) -> ParsedAddress:
    """Postcode, state and locality as far as the address's tail tells them."""
    norm = normalize(address)
    words = norm.split()
    postcode = next((m.group(1) for m in reversed(list(_POSTCODE.finditer(norm))) if m.start() > len(norm) // 3), None)
    state = next((w for w in reversed(words) if w in STATE_CODES), None)
    locality = None
    raw_parts = [p.strip() for p in address.upper().split(",") if p.strip()]
    if len(raw_parts) >= 2:
        tail = normalize(raw_parts[-1])
        tail_words = [w for w in tail.split() if w not in STATE_CODES and not _POSTCODE.fullmatch(w)]
        if not tail_words and len(raw_parts) >= 3:
            tail_words = normalize(raw_parts[-2]).split()
        locality = " ".join(tail_words) or None
    return ParsedAddress(norm, postcode, state, locality)
