from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.runner import serve

settings = GatewaySettings()
serve(create_app(settings), settings, "gateway")
