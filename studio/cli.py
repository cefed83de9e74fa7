"""`audiobook studio`: serve the studio on 127.0.0.1, or manage its accounts (--create-admin, --add-user, --grant)."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from stages.errors import UserError

DEFAULT_PORT = 8765
PASSWORD_ENV = "AUDIOBOOK_STUDIO_PASSWORD"  # read instead of prompting, for scripts


def register(sub) -> None:
    p = sub.add_parser("studio", help="review and fix renders in the browser, as a team")
    p.add_argument("--root", type=Path, default=Path(os.environ.get("AUDIOBOOK_ROOT", ".")),
                   help="the workspace `produce` wrote (default: . or $AUDIOBOOK_ROOT)")
    p.add_argument("--db", default=os.environ.get("AUDIOBOOK_STUDIO_DB"),
                   help="SQLAlchemy URL of the studio's database (default: sqlite file ROOT/studio.db)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (when served over HTTPS)")
    p.add_argument("--create-admin", metavar="NAME", help="create an admin account and exit")
    p.add_argument("--add-user", nargs=2, metavar=("NAME", "ROLE"), help="create an account (producer, reviewer, "
                                                                         "listener or admin) and exit")
    p.add_argument("--grant", nargs=2, metavar=("NAME", "SLUG"), help="give an account access to a book and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from studio import auth, db

    sessions = db.connect(args.db or db.default_url(args.root))
    if args.create_admin or args.add_user:
        name, role = (args.create_admin, "admin") if args.create_admin else args.add_user
        password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"password for {name}: ")
        with sessions() as session, session.begin():
            auth.create_user(session, name, password, role)
            auth.audit(session, "(command line)", "create-user", name, role)
        print(f"created {role} {name!r}")
        return 0
    if args.grant:
        from sqlalchemy import select

        name, slug = args.grant
        with sessions() as session, session.begin():
            user = session.scalar(select(db.User).where(db.User.username == name))
            if user is None:
                raise UserError(f"no account {name!r}; create it first with --add-user {name} ROLE")
            auth.grant(session, user, slug)
            auth.audit(session, "(command line)", "grant", slug, name)
        print(f"{name!r} may now open {slug!r}")
        return 0
    import uvicorn

    from studio.app import create_app

    app = create_app(args.root, sessions, secure_cookies=args.secure_cookies)
    print(f"studio on http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
