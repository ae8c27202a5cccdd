"""Staff roles: each may do what the roles below it may."""

from __future__ import annotations

import pytest

from engine.rules.staff import Role, parse_role


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.fundraiser, Role.fundraiser, True),
        (Role.fundraiser, Role.manager, False),
        (Role.manager, Role.fundraiser, True),
        (Role.manager, Role.admin, False),
        (Role.admin, Role.manager, True),
    ],
)
def test_a_role_allows_itself_and_what_is_below_it(
    role: Role, required: Role, allowed: bool
) -> None:
    assert role.allows(required) is allowed


def test_role_names_parse_in_any_case_and_unknown_ones_do_not() -> None:
    assert parse_role(" Manager ") is Role.manager
    assert parse_role("owner") is None
