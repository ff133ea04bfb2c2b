"""The zoo's losses families: planted bugs and the clean twin of each."""

from __future__ import annotations

from tests.checks.zoo import Setup


def correct_setups() -> list[Setup]:
    return []


def bug_setups() -> list[Setup]:
    return []
