from chat_service.app import create_app
from chat_service.settings import ChatSettings
from shared.runner import main

main("chat", ChatSettings, create_app)
