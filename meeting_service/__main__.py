from meeting_service.app import create_app
from meeting_service.settings import MeetingSettings
from shared.runner import serve

settings = MeetingSettings()
serve(create_app(settings), settings, "meeting")
