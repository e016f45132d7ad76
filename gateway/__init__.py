"""The gateway: identity provider and authenticating streaming proxy."""
