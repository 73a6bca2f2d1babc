"""`python -m services.auth`: run the auth service (public listener and admin listener)."""

from services.auth.app import SERVICE, create_app
from services.auth.settings import AuthSettings
from shared.service import serve

if __name__ == "__main__":
    settings = AuthSettings()
    app = create_app(settings)
    serve(app, SERVICE, settings, settings.auth_port, admin=(app.state.admin_app, settings.auth_admin_port))
