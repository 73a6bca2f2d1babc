"""`python -m services.notifier`: run the webhook notifier (public listener and admin listener)."""

from services.notifier.app import SERVICE, create_app
from services.notifier.settings import NotifierSettings
from shared.service import serve

if __name__ == "__main__":
    settings = NotifierSettings()
    app = create_app(settings)
    serve(app, SERVICE, settings, settings.notifier_port, admin=(app.state.admin_app, settings.notifier_admin_port))
