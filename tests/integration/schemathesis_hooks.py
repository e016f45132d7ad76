"""Loaded by schemathesis (SCHEMATHESIS_HOOKS): values for the string formats the
documents name, which JSON Schema cannot spell as a pattern."""

import schemathesis
from hypothesis import strategies as st

# shared.text.readable_name: something visible, no control characters or bidi overrides.
schemathesis.openapi.format(
    "readable-name", st.from_regex(r"\A[A-Za-z0-9À-ÿ][A-Za-z0-9À-ÿ ._'-]{0,30}\Z")
)
# Message text: not blank, and no NUL (Postgres cannot store it).
schemathesis.openapi.format("visible-text", st.from_regex(r"\A\S[^\x00]{0,60}\Z"))
