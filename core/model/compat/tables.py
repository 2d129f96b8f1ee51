"""The rule tables: ``core/model/data/op_rules.json``, loaded once.

The file's shape is fixed by ``op_rules.schema.json`` next to it (unknown
keys are errors; the tests validate the shipped file against it). A
``source`` on a target or an op is inherited by the checks below it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

__all__ = ["Rule", "RULES_PATH", "SCHEMA_PATH", "rules"]

Rule = dict[str, Any]  # one check of a rule table: {"check": kind, ...its parameters}

_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
RULES_PATH = os.path.join(_DATA, "op_rules.json")
SCHEMA_PATH = os.path.join(_DATA, "op_rules.schema.json")


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    """The parsed rule tables (``core/model/data/op_rules.json``)."""
    with open(RULES_PATH, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
