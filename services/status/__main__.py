"""`python -m services.status`: run the status service (projection consumer + jobs endpoint)."""

from services.status.app import SERVICE, create_app
from services.status.settings import StatusSettings
from shared.service import serve

if __name__ == "__main__":
    settings = StatusSettings()
    serve(create_app(settings), SERVICE, settings, settings.status_port)
