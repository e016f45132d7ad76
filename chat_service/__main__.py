from chat_service.app import create_app
from chat_service.settings import ChatSettings
from shared.runner import serve

settings = ChatSettings()
serve(create_app(settings), settings, "chat")
