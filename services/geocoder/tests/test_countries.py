"""Geocoding beyond Australia: the country from the address (its name or ISO code, else the
postcode pattern that fits with the state and locality), COUNTRY_BIAS only breaking ties, the
package's country files read only when an address points to them."""

import json
from importlib import resources

import pytest

from services.geocoder.adapters.gazetteer import World, country
from services.geocoder.countries import WITH_COORDINATES, detect
from shared.geo import haversine_km


@pytest.mark.parametrize(
    "address, code, near, within_km, precision",
    [
        ("1 Main St, Boulder, CO 80302, USA", "US", (40.015, -105.27), 15, "postcode"),
        ("Pike Place, Seattle, WA 98101", "US", (47.61, -122.34), 5, "postcode"),  # no country named
        ("1 Queen St, Auckland 1010, New Zealand", "NZ", (-36.85, 174.76), 5, "postcode"),
        ("ul. Marszałkowska 1, 00-624 Warszawa, Poland", "PL", (52.23, 21.01), 5, "postcode"),
        ("Rue Neuve 1, 1000 Bruxelles", "BE", (50.85, 4.35), 5, "postcode"),  # the locality decides
        ("Rådhuspladsen 1, 1550 København V, DK", "DK", (55.676, 12.568), 5, "postcode"),
        ("24 Sussex Dr, Ottawa, ON K1M 1M4, Canada", "CA", (45.44, -75.69), 10, "postcode"),
        ("10 Downing St, London SW1A 2AA, UK", "GB", (51.50, -0.13), 30, "locality"),  # postcode areas only
        ("Av. Paulista 1000, 01310-100 São Paulo, Brasil", "BR", (-23.55, -46.63), 25, "locality"),
        ("123 Queen St, Brisbane City QLD 4000", "AU", (-27.4698, 153.0251), 3, "postcode"),
    ],
)
def test_addresses_in_many_countries_land_in_their_country(address, code, near, within_km, precision):
    place, _ = World("AU").locate(address)
    assert place is not None and place.country == code
    assert place.precision == precision
    assert haversine_km(place.lat, place.lng, *near) < within_km


def test_a_country_is_named_by_name_alias_or_iso_code_and_a_state_abbreviation_is_no_country():
    assert detect("Unter den Linden 1, 10117 Berlin, Deutschland").named == "DE"
    assert detect("1 Queen St, Auckland 1010, NZ").named == "NZ"
    assert detect("5 Loockerman Plaza, Dover, DE").named is None  # Delaware, not Germany
    assert detect("1 Main St, Los Angeles, CA").named is None  # California, not Canada
    assert detect("1 Test St, Springfield 4000").postcodes.keys() >= {"AU", "BE", "NZ"}


def test_country_bias_only_breaks_a_tie():
    for bias in ("BE", "SI", "AU", "DK"):
        place, ambiguous = World(bias).locate("Somewhere St 9, 2000")  # 2000 exists in each, nothing else said
        assert place.country == bias and ambiguous
    place, ambiguous = World("AU").locate("Rue Neuve 1, 1000 Bruxelles")
    assert place.country == "BE" and not ambiguous  # evidence beats the bias


def test_a_country_without_offline_coordinates_is_not_guessed():
    assert World("AU").locate("Unter den Linden 1, 10117 Berlin, Germany") == (None, False)
    assert World("AU").locate("1-1 Marunouchi, Chiyoda, Tokyo 100-0005, Japan") == (None, False)


def test_countries_are_read_only_when_an_address_points_to_them():
    country.cache_clear()
    World("AU").locate("61 Merthyr Rd, New Farm QLD 4005")  # postcode, state and locality agree
    assert country.cache_info().currsize == 1  # Australia only, not the other 4-digit countries
    World("AU").locate("ul. Marszałkowska 1, 00-624 Warszawa, Poland")
    assert country.cache_info().currsize == 2


def test_the_countries_with_coordinates_are_those_the_package_has_coordinates_for():
    folder = resources.files("countrystatecity_postal_codes") / "data" / "by-country"
    for code in [*sorted(WITH_COORDINATES), "DE", "FR", "JP"]:
        records = json.loads((folder / code / "postcodes.json").read_text())
        placed = sum(r["latitude"] is not None for r in records)
        assert (placed > 0.9 * len(records)) == (code in WITH_COORDINATES), code
