"""The offline gazetteer: postcode and locality centroids shipped in a PyPI package.

Data: `countrystatecity-postal-codes` (ODbL). Of its 125 countries, the 25 in
`services.geocoder.countries.WITH_COORDINATES` carry coordinates; a country's file is read the
first time an address may be in it (US: 34k postcodes), and kept. Centroids are approximate by
nature: a match is reported as `postcode` precision, or `locality` for a locality match and for
the British data, which has postcode *areas* ("LE": Leicestershire) only.
"""

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from services.geocoder.countries import WITH_COORDINATES, Detected, detect, fold
from services.geocoder.normalize import ParsedAddress, parse


@dataclass(frozen=True)
class Place:
    lat: float
    lng: float
    precision: str
    name: str
    country: str = "AU"


@dataclass(frozen=True, slots=True)
class Entry:
    lat: float
    lng: float
    state: str | None
    locality: str  # folded
    precision: str


def _postcode_key(country: str, postcode: str) -> str:
    """The form the data keys a written postcode by: ZIP+4 -> ZIP, a Canadian postcode -> its FSA,
    a British one -> its area letters."""
    code = postcode.upper().strip()
    if country in ("US", "PR", "VI", "GU"):
        return code[:5]
    if country == "CA":
        return code.replace(" ", "")[:3]
    if country == "GB":
        area = re.match(r"[A-Z]{1,2}", code)
        return area.group(0) if area else code
    if country == "BR":
        return code[:5] + "-000"  # the data has one centroid per 5-digit CEP prefix
    return code


class Gazetteer:
    """One country's centroids by postcode and by locality."""

    def __init__(self, records: list[dict], country: str = "AU") -> None:
        self.country = country
        self.by_postcode: dict[str, list[Entry]] = {}
        self.by_locality: dict[tuple[str, str], Entry] = {}
        self.by_locality_any: dict[str, list[Entry]] = {}
        self.states: set[str] = set()
        for r in records:
            if r.get("latitude") is None or r.get("longitude") is None:
                continue
            precision = "locality" if r.get("type") == "area" else "postcode"
            name = fold(r.get("localityName") or "")
            entry = Entry(r["latitude"], r["longitude"], r.get("stateCode"), name, precision)
            self.by_postcode.setdefault(r["code"].upper(), []).append(entry)
            if (state := (r.get("stateCode") or "").upper()).isalpha() and len(state) >= 2:
                self.states.add(state)  # numeric codes ("14") would read house numbers as states
            if name:
                self.by_locality.setdefault((name, entry.state or ""), entry)
                self.by_locality_any.setdefault(name, []).append(entry)

    def _place(self, e: Entry, precision: str, code: str) -> Place:
        return Place(e.lat, e.lng, precision, f"{code} {e.state or ''}".strip(), self.country)

    def locate(self, parsed: ParsedAddress) -> tuple[Place | None, bool]:
        """(place, ambiguous): postcode first, then locality within the state, then locality alone."""
        found = self.by_postcode.get(_postcode_key(self.country, parsed.postcode)) if parsed.postcode else None
        if found:
            e = next((e for e in found if not parsed.state or parsed.state == e.state), None)
            if e:
                return self._place(e, e.precision, parsed.postcode), False
        if parsed.locality:
            if parsed.state and (e := self.by_locality.get((parsed.locality, parsed.state))):
                return self._place(e, "locality", e.locality), False
            candidates = self.by_locality_any.get(parsed.locality, [])
            if candidates:
                states = {c.state for c in candidates}
                return self._place(candidates[0], "locality", candidates[0].locality), len(states) > 1

        return None, False

    def score(self, address: str, postcode: str) -> tuple[int, Place | None]:
        """How well `address` fits this country through `postcode`: 0 (not a postcode here, or one
        of another state than the address names), 1 (the postcode exists), +1 for the state the
        address names, +1 for the locality of that postcode in the address."""
        entries = self.by_postcode.get(_postcode_key(self.country, postcode), [])
        words = set(fold(" ".join(address.split(",")[-2:])).split())  # the tail: not "IN" of a street
        named_states = (words & self.states) if self.country != "AU" else {parse(address).state} - {None}
        best: tuple[int, Place | None] = (0, None)
        for e in entries:
            if named_states and e.state not in named_states:
                continue
            points = 1 + bool(named_states) + bool(e.locality and _mentions(fold(address), e.locality))
            if points > best[0]:
                best = (points, self._place(e, e.precision, postcode))
        return best


MOST = 3  # postcode, state and locality all agree


def _mentions(address: str, locality: str) -> bool:
    """The address names the locality (or the first part of "Whangarei District, Northland")."""
    head = locality.split(" DISTRICT")[0].split(" CITY")[0].strip()
    return bool(head) and re.search(rf"\b{re.escape(head)}\b", address) is not None


@cache
def country(code: str) -> Gazetteer:
    """One country's gazetteer, read on first use (only the countries addresses point to)."""
    data = resources.files("countrystatecity_postal_codes") / "data" / "by-country" / code / "postcodes.json"
    return Gazetteer(json.loads(data.read_text()), code)


def australia() -> Gazetteer:
    """The shipped Australian gazetteer, loaded once per process."""
    return country("AU")


class World:
    """Every country with coordinates: the one an address names, else the one whose postcode,
    state and locality fit it best; `bias` (COUNTRY_BIAS) only breaks ties."""

    def __init__(self, bias: str = "AU") -> None:
        self.bias = bias.upper()

    def locate(self, address: str) -> tuple[Place | None, bool]:
        found = detect(address)
        if found.named and found.named not in WITH_COORDINATES:
            return None, False  # a country the offline data has no coordinates for: not guessed
        best, ambiguous = self._by_postcode(found)
        if best is not None:
            return best, ambiguous
        home = found.named or self.bias
        if home not in WITH_COORDINATES:
            return None, False
        gazetteer = country(home)
        if home == "AU":
            return gazetteer.locate(parse(found.rest))
        return gazetteer.locate(_locality_only(found.rest, gazetteer))

    def _by_postcode(self, found: Detected) -> tuple[Place | None, bool]:
        order = sorted(found.postcodes, key=lambda c: (c != self.bias, c))  # the bias first: a tie goes to it
        scored: list[tuple[int, str, Place]] = []
        for code in order:
            points, place = country(code).score(found.rest, found.postcodes[code])
            if place is not None:
                scored.append((points, code, place))
                if points == MOST and code == self.bias:
                    break  # nothing can beat it, and a tie goes to the bias anyway
        if not scored:
            return None, False
        top = max(points for points, _, _ in scored)
        winners = [(code, place) for points, code, place in scored if points == top]
        return winners[0][1], len(winners) > 1


def _locality_only(address: str, gazetteer: Gazetteer) -> ParsedAddress:
    """The last comma part as the locality, the country's state codes taken out of it."""
    parts = [fold(p) for p in address.split(",") if p.strip()]
    words = [w for w in (parts[-1].split() if len(parts) >= 2 else []) if not any(ch.isdigit() for ch in w)]
    state = next((w for w in words if w in gazetteer.states), None)
    locality = " ".join(w for w in words if w != state) or None
    return ParsedAddress(fold(address), None, state, locality)
