"""The offline gazetteer: Australian postcode and locality centroids shipped in a PyPI package.

Data: `countrystatecity-postal-codes` (ODbL). Centroids are approximate by nature: every
match is reported as `postcode` or `locality` precision, never better.
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from services.geocoder.normalize import ParsedAddress


@dataclass(frozen=True)
class Place:
    lat: float
    lng: float
    precision: str
    name: str


class Gazetteer:
    def __init__(self, records: list[dict]) -> None:
        self.by_postcode: dict[str, dict] = {}
        self.by_locality: dict[tuple[str, str], dict] = {}
        self.by_locality_any: dict[str, list[dict]] = {}
        for r in records:
            self.by_postcode.setdefault(r["code"], r)
            name = r["localityName"].upper()
            self.by_locality.setdefault((name, r["stateCode"]), r)
            self.by_locality_any.setdefault(name, []).append(r)

    def locate(self, parsed: ParsedAddress) -> tuple[Place | None, bool]:
        """(place, ambiguous): postcode first, then locality within the state, then locality alone."""
        r = self.by_postcode.get(parsed.postcode) if parsed.postcode else None
        if r and (not parsed.state or parsed.state == r["stateCode"]):
            return Place(r["latitude"], r["longitude"], "postcode", f"{r['code']} {r['stateCode']}"), False
        if parsed.locality:
            if parsed.state and (r := self.by_locality.get((parsed.locality, parsed.state))):
                return Place(r["latitude"], r["longitude"], "locality", f"{r['localityName']} {r['stateCode']}"), False
            candidates = self.by_locality_any.get(parsed.locality, [])
            if candidates:
                r = candidates[0]
                states = {c["stateCode"] for c in candidates}
                return (
                    Place(r["latitude"], r["longitude"], "locality", f"{r['localityName']} {r['stateCode']}"),
                    len(states) > 1,
                )
        return None, False


@lru_cache(maxsize=1)
def australia() -> Gazetteer:
    """The shipped Australian gazetteer, loaded once per process."""
    data = resources.files("countrystatecity_postal_codes") / "data" / "by-country" / "AU" / "postcodes.json"
    return Gazetteer(json.loads(data.read_text()))
