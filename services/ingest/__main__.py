"""`python -m services.ingest`: run the ingest gateway."""

from services.ingest.app import SERVICE, create_app
from services.ingest.settings import IngestSettings
from shared.service import serve

if __name__ == "__main__":
    settings = IngestSettings()
    serve(create_app(settings), SERVICE, settings, settings.ingest_port)
