"""The chat service: chat rooms, members and persistent messages."""
