"""`python -m services.console`: run the console (the customers' dashboard)."""

from services.console.app import SERVICE, create_app
from services.console.settings import ConsoleSettings
from shared.service import serve

if __name__ == "__main__":
    settings = ConsoleSettings()
    serve(create_app(settings), SERVICE, settings, settings.console_port)
