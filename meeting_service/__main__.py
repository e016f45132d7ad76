from meeting_service.app import create_app
from meeting_service.settings import MeetingSettings
from shared.runner import main

main("meeting", MeetingSettings, create_app)
