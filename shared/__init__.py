"""The common library of the gateway, the chat service and the meeting service."""
