"""Who is calling. Staff sign in to the dashboard with their API key, which buys a signed
cookie naming a server-side session (never the key); signing out deletes the session.
API clients send the key as a Bearer token. Either way the key is looked up on every
request, so revoking it locks its holder out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, TimestampSigner
from sqlalchemy.orm import Session

from engine.api.deps import AppSettings, DbSession, get_sessions
from engine.api.ratelimit import TokenBuckets, client_key
from engine.config import Keys, Settings
from engine.errors import Forbidden, TooManyRequests, Unauthorized
from engine.rules.staff import Role
from engine.store import apikeys, audit, staff_sessions
from engine.store.apikeys import Staff

COOKIE = "mobilise_staff"
_SALT = "mobilise.staff-session"


class SignInRequired(Exception):
    """A dashboard page was asked for without a valid sign-in: answer with the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class _Signer(TimestampSigner):
    """itsdangerous' timestamped signer on the application's clock (tests inject time)."""

    def __init__(self, keys: Keys, clock: Callable[[], datetime]) -> None:
        # itsdangerous takes the keys oldest to newest, signs with the last and checks
        # under each: a sign-in made before a rotation of the secret key still holds.
        oldest_first = (*reversed(keys.fallbacks), keys.current)
        super().__init__(
            [k.encode() if isinstance(k, str) else k for k in oldest_first], salt=_SALT
        )
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


def _signer(request: Request, settings: Settings) -> _Signer:
    return _Signer(settings.keys, request.app.state.clock)


def _lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=settings.staff_session_hours)


def sign_in(request: Request, settings: Settings, session: DbSession, staff: Staff) -> str:
    """Open a session for `staff`; the value of its cookie."""
    now = request.app.state.clock()
    token = staff_sessions.open_session(session, staff, now=now, lifetime=_lifetime(settings))
    return _signer(request, settings).sign(token).decode()


def _session_token(request: Request, settings: Settings) -> str | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        token = _signer(request, settings).unsign(
            value, max_age=int(_lifetime(settings).total_seconds())
        )
    except BadSignature:  # forged, from another secret, or expired
        return None
    return token.decode()


def sign_out(request: Request, settings: Settings, session: DbSession) -> None:
    token = _session_token(request, settings)
    if token is not None:
        staff_sessions.close(session, token)


def _signed_in(request: Request, settings: Settings, session: DbSession) -> Staff | None:
    token = _session_token(request, settings)
    if token is None:
        return None
    now = request.app.state.clock()
    return staff_sessions.holder(session, token, now=now, lifetime=_lifetime(settings))


def record_refusal(session: Session, key: str, *, dashboard: bool, now: datetime) -> None:
    """A refused key in the audit log: who is the key it claims to be (by its prefix), or
    `unknown`; never the key, nor any part of it."""
    key_id = apikeys.claimed(session, key)
    holder = audit.staff if dashboard else audit.api_key
    audit.record(
        session,
        actor=audit.UNKNOWN if key_id is None else holder(key_id),
        action=audit.SIGN_IN_REFUSED if dashboard else audit.KEY_REFUSED,
        now=now,
    )


def _key_holder(request: Request, key: str) -> Staff | None:
    """The holder of a Bearer key. A refused key is counted against the client's sign-in
    limit (the dashboard's: guessing keys through the API is no faster) and recorded while
    the limit lets it (a flood cannot fill the log); past the limit, a 429. In a transaction
    of its own, committed before the route's (which the 401 rolls back) takes a lock."""
    with get_sessions(request).begin() as session:
        found = apikeys.authenticate(session, key)
        if found is None:
            now = request.app.state.clock()
            attempts: TokenBuckets = request.app.state.sign_in_attempts
            wait = attempts.take(client_key(request.scope), now.timestamp())
            if wait:
                raise TooManyRequests(
                    "too many refused keys from your address",
                    retry_after=wait,
                    hint=f"wait {wait} s",
                )
            record_refusal(session, key, dashboard=False, now=now)
    return found


class KeyRequired(Unauthorized):
    headers = MappingProxyType({"WWW-Authenticate": 'Bearer realm="mobilise"'})


def _denied(staff: Staff, required: Role) -> Forbidden:
    return Forbidden(
        f"this needs the {required.name} role; your key has the {staff.role.name} role",
        hint="ask an admin for a key with that role (`mobilise apikey create`)",
    )


def dashboard_staff(required: Role) -> Callable[..., Staff]:
    """Dependency: the signed-in staff member, or the login page; 403 below `required`."""

    def dependency(request: Request, settings: AppSettings, session: DbSession) -> Staff:
        staff = _signed_in(request, settings, session)
        if staff is None:
            raise SignInRequired(request.url.path)
        if not staff.role.allows(required):
            raise _denied(staff, required)
        return staff

    return dependency


# Declared once: every route that takes an API key says so in the OpenAPI schema (a
# security requirement on the `apiKey` scheme), so that generated clients send it.
_BEARER = HTTPBearer(
    scheme_name="apiKey",
    description="an API key from `mobilise apikey create`, as `Authorization: Bearer <key>`",
    auto_error=False,
)


def api_staff(required: Role) -> Callable[..., Staff]:
    """Dependency: the holder of the Bearer key, 401 without a valid one, 403 below `required`."""

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    ) -> Staff:
        key = bearer.credentials.strip() if bearer else ""
        staff = _key_holder(request, key) if key else None  # no key at all is no attempt
        if staff is None:
            raise KeyRequired(
                "an API key is required",
                hint="send `Authorization: Bearer <key>`; `mobilise apikey create` makes one",
            )
        if not staff.role.allows(required):
            raise _denied(staff, required)
        return staff

    return dependency


Manager = Annotated[Staff, Depends(dashboard_staff(Role.manager))]
Fundraiser = Annotated[Staff, Depends(dashboard_staff(Role.fundraiser))]
ApiManager = Annotated[Staff, Depends(api_staff(Role.manager))]
ApiFundraiser = Annotated[Staff, Depends(api_staff(Role.fundraiser))]
