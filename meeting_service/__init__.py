"""The meeting service: meeting rooms, codes, participants, the waiting room."""
