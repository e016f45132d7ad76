-- The periodic purge finds expired rows by time, across every key and family.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX login_attempts_at ON login_attempts (at);
