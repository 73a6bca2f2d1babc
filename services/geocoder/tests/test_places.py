import pytest

from services.geocoder.adapters.gazetteer import australia
from services.geocoder.normalize import normalize, parse
from shared.geo import haversine_km


def test_the_same_address_written_differently_normalizes_alike():
    a = normalize("123 Queen St., Brisbane, Queensland 4000")
    b = normalize("123  QUEEN STREET BRISBANE QLD 4000 Australia")
    assert a == b == "123 QUEEN STREET BRISBANE QLD 4000"


def test_the_tail_of_an_address_gives_postcode_state_and_locality():
    p = parse("10 Stanley St, South Brisbane QLD 4101")
    assert (p.postcode, p.state, p.locality) == ("4101", "QLD", "SOUTH BRISBANE")
    assert parse("4000 Queen St, Brisbane").postcode is None  # a street number is not a postcode


@pytest.mark.parametrize(
    "address, near, within_km",
    [
        ("123 Queen St, Brisbane City QLD 4000", (-27.4698, 153.0251), 3),  # Brisbane CBD
        ("1 Macquarie St, Sydney NSW 2000", (-33.8688, 151.2093), 3),  # Sydney CBD
        ("Flinders St, Melbourne, Victoria 3000", (-37.8136, 144.9631), 3),  # Melbourne CBD
        ("Sandgate Rd, Albion, QLD", (-27.4300, 153.0430), 3),  # locality + state, no postcode
    ],
)
def test_the_gazetteer_places_real_addresses_near_the_truth(address, near, within_km):
    place, ambiguous = australia().locate(parse(address))
    assert place is not None and place.precision in ("postcode", "locality")
    assert haversine_km(place.lat, place.lng, *near) < within_km


def test_an_unknown_place_is_not_guessed():
    assert australia().locate(parse("45 Nowhere Rd, Atlantis ZZ")) == (None, False)


def test_a_postcode_in_the_wrong_state_is_not_trusted():
    place, _ = australia().locate(parse("1 Test St, Somewhere VIC 4000"))
    assert place is None or place.precision == "locality"
