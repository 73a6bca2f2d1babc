"""`python -m services.optimizer`: run one optimizer consumer (start more to scale out)."""

from services.optimizer.app import SERVICE, create_app
from services.optimizer.settings import OptimizerSettings
from shared.service import serve

if __name__ == "__main__":
    settings = OptimizerSettings()
    serve(create_app(settings), SERVICE, settings, settings.optimizer_port)
