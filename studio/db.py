"""The studio's state in a real database through SQLAlchemy: accounts, sessions, book grants, the audit log.

A SQLite file under the workspace by default (`<root>/studio.db`); any SQLAlchemy URL, such as a
PostgreSQL one, by configuration (`--db`, or AUDIOBOOK_STUDIO_DB).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

ROLES = ("admin", "producer", "reviewer", "listener")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)  # stored as naive UTC everywhere


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class LoginSession(Base):
    """A signed-in browser: the random token in its HTTP-only cookie, and its CSRF token."""

    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    expires: Mapped[dt.datetime] = mapped_column(DateTime)


class Grant(Base):
    """A user's access to one book (admins see every book without one)."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("user_id", "slug"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(128))


class LoginAttempt(Base):
    """A failed sign-in, for rate limiting by user name and by client address."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Approval(Base):
    """A chapter approved for release (one per chapter; approving again replaces it)."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("slug", "chapter"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(128))
    chapter: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Note(Base):
    """A reviewer's comment or flag on one segment."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(128))
    chapter: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "flag" or "comment"
    text: Mapped[str] = mapped_column(Text, default="")
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Job(Base):
    """A re-render after an edit: the book produced again in the background (only what changed is remade)."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(128))
    chapter: Mapped[int] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, done, failed
    message: Mapped[str] = mapped_column(Text, default="")
    take_before: Mapped[str] = mapped_column(String(64), default="")
    take_after: Mapped[str] = mapped_column(String(64), default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Audition(Base):
    """A line made in a candidate voice for the cast page (the take sits in the take cache under `key`)."""

    __tablename__ = "auditions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(128))
    speaker: Mapped[str] = mapped_column(String(128))
    voice: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


def default_url(root: Path) -> str:
    return f"sqlite:///{Path(root).resolve() / 'studio.db'}"


def connect(url: str) -> sessionmaker:
    """Return a session factory for the database at `url`, its tables created if missing."""
    engine = create_engine(url, future=True)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)
