"""Staff roles and what each may do: fundraisers read figures, managers also run campaigns
(templates, journeys, previews with real data), admins also manage keys."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """Ordered by rights: a role may do everything the roles below it may."""

    fundraiser = 1
    manager = 2
    admin = 3

    def allows(self, required: Role) -> bool:
        return self >= required


ROLE_NAMES = tuple(role.name for role in Role)


def parse_role(name: str) -> Role | None:
    return Role.__members__.get(name.strip().lower())
