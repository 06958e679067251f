"""docs/api.md is kept current: its table of operations is exactly the served OpenAPI
document's, with the same problem statuses for each. 429 (every request is charged to a budget)
and 500 apply to every operation: the page says so once, below the table."""

from __future__ import annotations

import re
from pathlib import Path

from tests.contract import CONTRACT

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROW = re.compile(r"^\| `(GET|POST|DELETE)` \| `(/v1/[^`]*)` \| [^|]+ \| ([0-9, ]+|none) \|$")


def test_the_api_reference_lists_every_operation_with_the_problems_it_can_answer():
    # given: the table of docs/api.md
    documented = {}
    for line in REFERENCE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            method, path, statuses = match.groups()
            documented[(method.lower(), path)] = [] if statuses == "none" else sorted(
                s.strip() for s in statuses.split(","))
    # when: the served document is read
    CONTRACT.openapi()
    served = {}
    for path, item in CONTRACT.document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "delete"):
                assert "429" in operation["responses"], (method, path)
                served[(method, path)] = sorted(code for code in operation["responses"]
                                                if code.startswith("4") and code != "429")
    # then
    assert documented == served
    assert "Every operation may also answer 429 `rate_limited`" in REFERENCE.read_text()
