"""`make bench` runs the stores' own statements under pgbench, whose variables are
`:name` anywhere in the text: a colon before a letter in a statement (a time format,
a JSON key) would be read as a variable pgbench does not have, and the reference
would fail (as it did once the statements wrote timestamps in the API's form)."""

import re

from tests.bench import create_room_sql, send_message_sql

# pgbench's variable: a colon (not part of a `::` cast) before a name.
VARIABLE = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


def test_the_pgbench_statements_name_only_their_variables():
    assert set(VARIABLE.findall(create_room_sql())) == {"name", "user_id", "display_name"}
    assert set(VARIABLE.findall(send_message_sql())) == {"room_id", "username", "body", "channel"}
