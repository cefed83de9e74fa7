"""Accounts, roles and sessions: argon2 password hashes, random session tokens (only their hash is stored),
a CSRF token per session, sign-in rate limiting, and what each role may do."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from stages.errors import UserError
from studio.db import ROLES, AuditEntry, Grant, LoginAttempt, LoginSession, User, now

SESSION_HOURS = 12
MIN_PASSWORD_CHARS = 10
LOGIN_WINDOW_MIN = 15
LOGIN_MAX_FAILURES = 5  # per user name in the window
LOGIN_MAX_FAILURES_PER_CLIENT = 20  # per client address (people behind one address guess their own names too)
PERMISSIONS = {
    "listener": {"listen"},
    "reviewer": {"listen", "comment", "approve", "edit"},  # edits lines; never the cast, never deletes
    "producer": {"listen", "comment", "approve", "edit", "cast", "delete"},
    "admin": {"listen", "comment", "approve", "edit", "cast", "delete", "admin"},
}
_hasher = PasswordHasher()


def create_user(db: Session, username: str, password: str, role: str) -> User:
    """Add an account; a role outside ROLES, a short password or a taken name is a UserError."""
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password for {username!r} is shorter than {MIN_PASSWORD_CHARS} characters; choose a longer one")
    if not username or db.scalar(select(User).where(User.username == username)):
        raise UserError(f"user name {username!r} is empty or taken; choose another")
    user = User(username=username, password_hash=_hasher.hash(password), role=role)
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, username: str, password: str) -> User | None:
    """Return the user if the password is right, else None (the same time whether or not the name exists)."""
    user = db.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return user


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def too_many_failures(db: Session, username: str, client: str) -> bool:
    since = now() - dt.timedelta(minutes=LOGIN_WINDOW_MIN)
    by_name = db.scalar(select(func.count()).where(LoginAttempt.username == username, LoginAttempt.at >= since))
    by_client = db.scalar(select(func.count()).where(LoginAttempt.client == client, LoginAttempt.at >= since))
    return (by_name or 0) >= LOGIN_MAX_FAILURES or (by_client or 0) >= LOGIN_MAX_FAILURES_PER_CLIENT


def record_failure(db: Session, username: str, client: str) -> None:
    db.add(LoginAttempt(username=username[:64], client=client[:64]))


def open_session(db: Session, user: User) -> tuple[str, LoginSession]:
    """Return a new session's cookie token and its row (the token itself is never stored)."""
    token = secrets.token_urlsafe(32)
    row = LoginSession(token_hash=_digest(token), user_id=user.id, csrf=secrets.token_urlsafe(32),
                       expires=now() + dt.timedelta(hours=SESSION_HOURS))
    db.add(row)
    return token, row


def session_user(db: Session, token: str | None) -> tuple[User, LoginSession] | None:
    if not token:
        return None
    row = db.get(LoginSession, _digest(token))
    if row is None or row.expires < now():
        return None
    user = db.get(User, row.user_id)
    return (user, row) if user else None


def close_session(db: Session, token: str) -> None:
    db.execute(delete(LoginSession).where(LoginSession.token_hash == _digest(token)))


def may(user: User, action: str) -> bool:
    return action in PERMISSIONS.get(user.role, set())


def can_see(db: Session, user: User, slug: str) -> bool:
    """True if `user` may open book `slug`: admins always, others with a grant."""
    return user.role == "admin" or db.scalar(select(Grant).where(Grant.user_id == user.id, Grant.slug == slug)) is not None


def grant(db: Session, user: User, slug: str) -> None:
    if not can_see(db, user, slug):
        db.add(Grant(user_id=user.id, slug=slug))


def audit(db: Session, username: str, action: str, target: str = "", detail: str = "") -> None:
    db.add(AuditEntry(username=username, action=action, target=target, detail=detail))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
