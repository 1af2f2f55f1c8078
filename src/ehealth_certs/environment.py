"""The two environments. They share no trust: each has its own root and issuing CA."""

from __future__ import annotations

from enum import StrEnum


class Environment(StrEnum):
    ACCEPTANCE = "acceptance"
    PRODUCTION = "production"
