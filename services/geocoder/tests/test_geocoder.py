"""The Geocoder use-case on fake providers and an in-memory cache: placement, fallbacks, warnings."""

from services.geocoder.adapters import build_geocoder
from services.geocoder.adapters.gazetteer import World
from services.geocoder.adapters.providers import GazetteerProvider
from services.geocoder.handlers import Found, Geocoder, ProviderDown
from services.geocoder.settings import GeocoderSettings
from shared.events import JobFailed, StopsGeocoded
from shared.events.jobs import Depot
from shared.testing.builders import import_requested as job
from shared.testing.builders import stop
from shared.testing.fakes import MemoryRedis


class CountingProvider:
    """A provider that answers rooftop for addresses it knows, and counts its calls."""

    def __init__(self, name: str, known: dict[str, tuple[float, float]], down: bool = False) -> None:
        self.name, self.known, self.down, self.calls = name, known, down, []

    async def lookup(self, address: str):
        self.calls.append(address)
        if self.down:
            raise ProviderDown(self.name)
        if address in self.known:
            return Found(*self.known[address], "rooftop", self.name)
        return None


def geocoder(*providers) -> Geocoder:
    """The service's geocoder with `providers` ahead of the gazetteer, on an in-memory cache."""
    settings = GeocoderSettings(lookup_concurrency=4, job_budget_seconds=5, outlier_km=150)
    return build_geocoder(settings, MemoryRedis(), [*providers, GazetteerProvider(World())])


async def test_given_coordinates_win_and_are_marked_provided():
    out = await geocoder().geocode(job(stop(1, "1 Queen St, Brisbane QLD 4000", -27.1, 153.1)))
    assert isinstance(out, StopsGeocoded)
    assert (out.locations[0].lat, out.locations[0].precision) == (-27.1, "provided")


async def test_identical_addresses_are_looked_up_once_and_then_cached():
    nominatim = CountingProvider("nominatim", {"1 Queen St, Brisbane QLD 4000": (-27.47, 153.02)})
    g = geocoder(nominatim)
    await g.geocode(job(stop(1, "1 Queen St, Brisbane QLD 4000"), stop(2, "1 queen st., brisbane qld 4000")))
    assert len(nominatim.calls) == 1
    again = await g.geocode(job(stop(1, "1 QUEEN STREET BRISBANE QLD 4000")))
    assert len(nominatim.calls) == 1 and again.locations[0].precision == "rooftop"


async def test_a_dead_provider_falls_back_to_the_gazetteer_with_an_honest_warning():
    out = await geocoder(CountingProvider("nominatim", {}, down=True)).geocode(
        job(stop(1, "45 Grey St, South Brisbane QLD 4101"))
    )
    assert out.locations[0].provider == "gazetteer" and out.locations[0].precision == "postcode"
    assert [w.code for w in out.warnings] == ["GEOCODE_APPROXIMATE"]


async def test_an_unplaceable_stop_is_a_warning_and_the_job_goes_on():
    out = await geocoder().geocode(job(stop(1, "1 Queen St, Brisbane QLD 4000"), stop(2, "nowhere at all")))
    assert isinstance(out, StopsGeocoded)
    assert out.locations[1].lat is None
    assert ("GEOCODE_FAILED", "S2") in [(w.code, w.external_stop_id) for w in out.warnings]


async def test_a_job_with_no_placeable_stop_fails():
    out = await geocoder().geocode(job(stop(1, "nowhere"), stop(2, "also nowhere")))
    assert isinstance(out, JobFailed) and out.code == "GEOCODE_FAILED_ALL" and out.spec_version == 1
    update = job(stop(1, "nowhere"), stop(2, "also nowhere")).model_copy(update={"spec_version": 3})
    assert (await geocoder().geocode(update)).spec_version == 3  # the spec that failed


async def test_a_stop_far_from_the_others_is_flagged():
    out = await geocoder().geocode(
        job(
            stop(1, "1 Queen St, Brisbane QLD 4000"),
            stop(2, "2 Grey St, South Brisbane QLD 4101"),
            stop(3, "3 Oxford St, Bulimba QLD 4171"),
            stop(4, "1 Macquarie St, Sydney NSW 2000"),
        )
    )
    assert [(w.code, w.external_stop_id) for w in out.warnings if w.code == "ADDRESS_OUTSIDE_REGION"] == [
        ("ADDRESS_OUTSIDE_REGION", "S4")
    ]


async def test_the_depot_is_placed_too():
    out = await geocoder().geocode(
        job(stop(1, "1 Queen St, Brisbane QLD 4000"), depot=Depot(address="Albion QLD 4010"))
    )
    assert out.depot is not None and out.depot.precision == "postcode"


async def test_a_redelivered_import_yields_the_very_same_event():
    event = job(stop(1, "1 Queen St, Brisbane QLD 4000"))
    first, again = await geocoder().geocode(event), await geocoder().geocode(event)
    assert first.event_id == again.event_id and first.correlation_id == event.correlation_id


async def test_without_redis_every_job_asks_the_providers_again():
    nominatim = CountingProvider("nominatim", {"1 Queen St, Brisbane QLD 4000": (-27.47, 153.02)})
    g = build_geocoder(GeocoderSettings(), chain=[nominatim, GazetteerProvider(World())])
    for _ in range(2):
        out = await g.geocode(job(stop(1, "1 Queen St, Brisbane QLD 4000")))
        assert out.locations[0].provider == "nominatim"
    assert len(nominatim.calls) == 2


async def test_an_update_asks_a_provider_only_for_its_changed_stops_and_passes_the_finished_ones_on():
    known = {"1 Queen St, Brisbane QLD 4000": (-27.47, 153.02), "9 Ann St, Brisbane QLD 4000": (-27.46, 153.03)}
    nominatim = CountingProvider("nominatim", {**known, "2 Adelaide St, Brisbane QLD 4000": (-27.468, 153.026)})
    g = geocoder(nominatim)
    first = await g.geocode(job(stop(1, "1 Queen St, Brisbane QLD 4000"), stop(2, "2 Adelaide St, Brisbane QLD 4000")))
    assert [loc.source for loc in first.locations] == ["provider", "provider"]
    update = job(
        stop(1, "1 Queen St, Brisbane QLD 4000"), stop(2, "9 Ann St, Brisbane QLD 4000"), stop(3, None, -27.5, 153.0)
    )
    update = update.model_copy(update={"spec_version": 2, "base_version": 4, "keep": ("S1",)})
    out = await g.geocode(update)
    assert [(loc.external_stop_id, loc.source) for loc in out.locations] == [
        ("S1", "cache"),
        ("S2", "provider"),
        ("S3", "client"),
    ]
    assert out.locations[0].provider == "nominatim"  # who placed it stays the public geocode_provider
    assert nominatim.calls[-1] == "9 Ann St, Brisbane QLD 4000" and len(nominatim.calls) == 3
    assert (out.spec_version, out.keep) == (2, ("S1",))


async def test_a_fleet_vehicles_start_and_end_are_placed_or_warned_about():
    from shared.events.jobs import VehicleSpec

    vehicles = (
        VehicleSpec(driver_email="a@x.test", start=Depot(address="Albion QLD 4010"), end=Depot(lat=-27.4, lng=153.1)),
        VehicleSpec(driver_email="b@x.test", start=Depot(address="nowhere at all")),
        VehicleSpec(driver_email="c@x.test"),
    )
    out = await geocoder().geocode(job(stop(1, "1 Queen St, Brisbane QLD 4000"), vehicles=vehicles))
    first, second, third = out.vehicles
    assert (first.start.precision, first.end.precision, first.end.lat) == ("postcode", "provided", -27.4)
    assert second.start.lat is None and second.end is None
    assert third.start is None and third.end is None
    assert [w.message for w in out.warnings if w.code == "VEHICLE_GEOCODE_FAILED"] == [
        "/vehicles/1/start could not be placed; that vehicle gets no route."
    ]
