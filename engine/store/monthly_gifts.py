"""Monthly gifts as the SQL sees them: a monthly gift is the payments that name one
`subscription_id` (the platform's id of the mandate); payments that name none are their
giver's monthly gift, which any end of the giver's monthly gifts ends too
(engine.store.donations.cancel_monthly).

- `in_force`: a monthly payment neither refunded nor cancelled;
- `first_payment`: the payment whose amount stands for its monthly gift in an email's
  monthly amount (a platform hands back the email's reference with every payment: six
  payments of 10 € are 10 € a month, not 60; engine/store/step_figures.py);
- `ended_since`: the end already recorded of a payment's monthly gift, for a payment
  recorded after it (a platform's retry, a later batch of a file).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from engine.store.models import Donation


def in_force(gift: Any) -> ColumnElement[bool]:
    """A monthly payment (the Donation entity or an alias) neither refunded nor cancelled."""
    return and_(
        gift.frequency == "monthly", gift.refunded_at.is_(None), gift.cancelled_at.is_(None)
    )


def first_payment(gift: Any, among: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """`gift`, a monthly payment in force, is the first in force of its monthly gift among
    the payments `among` takes (those of one email): its monthly amount counts once. One
    probe of the email's gifts (ix_donations_message) a payment."""
    earlier = aliased(Donation)
    same_gift = or_(
        and_(gift.subscription_id.is_not(None), earlier.subscription_id == gift.subscription_id),
        and_(
            gift.subscription_id.is_(None),
            earlier.subscription_id.is_(None),
            earlier.supporter_id == gift.supporter_id,
        ),
    )
    before = or_(
        earlier.donated_at < gift.donated_at,
        and_(earlier.donated_at == gift.donated_at, earlier.id < gift.id),
    )
    return ~exists().where(among(earlier), in_force(earlier), same_gift, before)


def ended_since(gift: Any) -> ScalarSelect[datetime | None]:
    """The earliest end, on or after the payment `gift`, of its monthly gift as recorded on
    its giver's other payments (NULL: none): those of its subscription, or, for a payment
    that names none, any of the giver's. A payment made before its gift ended is ended
    with it, whenever it is recorded. One probe of ix_donations_supporter."""
    ended = aliased(Donation)
    return (
        select(func.min(ended.cancelled_at))
        .where(
            ended.supporter_id == gift.supporter_id,
            ended.frequency == "monthly",
            ended.cancelled_at >= gift.donated_at,
            or_(gift.subscription_id.is_(None), ended.subscription_id == gift.subscription_id),
        )
        .scalar_subquery()
    )
