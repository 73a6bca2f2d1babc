"""`python -m services.geocoder`: run one geocoder consumer (start more to scale out)."""

from services.geocoder.app import SERVICE, create_app
from services.geocoder.settings import GeocoderSettings
from shared.service import serve

if __name__ == "__main__":
    settings = GeocoderSettings()
    serve(create_app(settings), SERVICE, settings, settings.geocoder_port)
