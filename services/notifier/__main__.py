"""`python -m services.notifier`: run the webhook notifier (change consumer, delivery worker, API)."""

from services.notifier.app import SERVICE, create_app
from services.notifier.settings import NotifierSettings
from shared.service import serve

if __name__ == "__main__":
    settings = NotifierSettings()
    serve(create_app(settings), SERVICE, settings, settings.notifier_port)
