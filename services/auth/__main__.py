"""`python -m services.auth`: run the auth service."""

from services.auth.app import SERVICE, create_app
from services.auth.settings import AuthSettings
from shared.service import serve

if __name__ == "__main__":
    settings = AuthSettings()
    serve(create_app(settings), SERVICE, settings, settings.auth_port)
