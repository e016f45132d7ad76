from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.runner import main

main("gateway", GatewaySettings, create_app)
