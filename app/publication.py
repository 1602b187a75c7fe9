"""Permanent public results pages: the presenter publishes a session's or a talk's results at a
stable address (``/r/{token}``), opt-in; withdrawing keeps the address, which then says when the
results were withdrawn (410), and nothing is ever deleted but with its session or talk.

A talk's publication is versioned by its sessions: version *n* holds the first *n* ended
sessions its pooled results are built from (oldest first, never a rehearsal), each version at
its own address (``/r/{token}/v{n}``), the newest at ``/r/{token}``. A session enters once it
has ended: its answers are final, and its join code, which the page shows, lets nobody in.
The page shows the results views as the results page does, with the same small-cell rules
(what the room may see); no login.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from app import package, results
from app.errors import Conflict, NotFound
from app.models import PollSession, Publication, Talk
from app.sessions import session_talk

TOKEN_BYTES = 9
"""12 URL-safe characters: an address nobody finds by trying."""

_changes = 0
"""Publications published, withdrawn or gone in this process: public pages drawn before a
change are drawn again (another process sees it when its drawn pages expire)."""


def changed() -> None:
    global _changes
    _changes += 1


def changes() -> int:
    return _changes


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _active(db: Session, *, session_id: int | None, talk_id: int | None) -> Publication | None:
    query = select(Publication).where(col(Publication.withdrawn_at).is_(None))
    if session_id is not None:
        query = query.where(Publication.session_id == session_id)
    else:
        query = query.where(Publication.talk_id == talk_id, col(Publication.session_id).is_(None))
    return db.exec(query.order_by(col(Publication.id).desc())).first()


def active_for_session(db: Session, poll: PollSession) -> Publication | None:
    return _active(db, session_id=poll.id, talk_id=None)


def active_for_talk(db: Session, talk: Talk) -> Publication | None:
    return _active(db, session_id=None, talk_id=talk.id)


def _publish(
    db: Session,
    *,
    poll: PollSession | None,
    talk: Talk,
    options: package.PackageOptions,
) -> Publication:
    found = active_for_session(db, poll) if poll is not None else active_for_talk(db, talk)
    if found is not None:  # published already: the same address, the licence as chosen then
        return found
    publication = Publication(
        token=new_token(),
        session_id=poll.id if poll is not None else None,
        talk_id=talk.id,
        licence=options.licence,
        contributors=list(options.contributors),
    )
    db.add(publication)
    db.commit()
    db.refresh(publication)
    changed()
    return publication


def publish_session(db: Session, poll: PollSession, options: package.PackageOptions) -> Publication:
    return _publish(db, poll=poll, talk=session_talk(db, poll), options=options)


def publish_talk(db: Session, talk: Talk, options: package.PackageOptions) -> Publication:
    return _publish(db, poll=None, talk=talk, options=options)


def withdraw(db: Session, token: str) -> Publication:
    """Withdraw a publication: its address answers 410 with the date from now on."""
    publication = by_token(db, token)
    if publication is None:
        raise NotFound("no publication at that address", code="no_publication")
    if publication.withdrawn_at is not None:
        raise Conflict("the publication was withdrawn already", code="withdrawn_already")
    publication.withdrawn_at = datetime.now(UTC).replace(microsecond=0)
    db.add(publication)
    db.commit()
    db.refresh(publication)
    changed()
    return publication


def by_token(db: Session, token: str) -> Publication | None:
    if not token or len(token) > 32:
        return None
    return db.exec(select(Publication).where(Publication.token == token)).first()


# --------------------------------------------------------------------------- what a page shows


@dataclass(frozen=True)
class Published:
    """What a public page shows: one version of a publication."""

    publication: Publication
    version: int
    versions: int
    """How many versions there are (the newest is ``versions``)."""
    session: results.SessionResults | None
    talk: results.TalkResults | None
    polls: list[PollSession]
    participants: int | None
    options: package.PackageOptions

    @property
    def is_talk(self) -> bool:
        return self.session is None


def options_of(publication: Publication, url: str | None = None) -> package.PackageOptions:
    return package.PackageOptions(
        licence=publication.licence,
        contributors=tuple(publication.contributors),
        url=url,
    )


def published_sessions(db: Session, talk: Talk) -> list[PollSession]:
    """The sessions a talk's public page may hold, oldest first: pooled, and ended."""
    return [p for p in results.sessions_to_pool(db, talk).polls if p.ended]


def published(
    db: Session, publication: Publication, version: int | None, url: str | None = None
) -> Published | None:
    """The page's content for ``version`` (None: the newest); None if there is no such
    version. Only for a publication that is not withdrawn."""
    from app.sessions import participant_count

    options = options_of(publication, url)
    if publication.session_id is not None:
        poll = db.get(PollSession, publication.session_id)
        if poll is None or version not in (None, 1):
            return None
        return Published(
            publication=publication,
            version=1,
            versions=1,
            session=results.session_results(db, poll),
            talk=None,
            polls=[poll],
            participants=participant_count(db, poll),
            options=options,
        )
    talk = db.get(Talk, publication.talk_id)
    if talk is None:
        return None
    polls = published_sessions(db, talk)
    newest = max(len(polls), 1)
    chosen = newest if version is None else version
    if not 1 <= chosen <= newest:
        return None
    return Published(
        publication=publication,
        version=chosen,
        versions=newest,
        session=None,
        talk=results.talk_results(db, talk, only={p.code for p in polls[:chosen]}),
        polls=polls[:chosen],
        participants=None,
        options=options,
    )


def citation_text(shown: Published, url: str) -> str:
    """How to cite this version, as one line (the package's CITATION.cff says the same)."""
    from app import i18n

    first = i18n.DEFAULT_LANGUAGE
    if shown.session is not None:
        title = shown.session.title(first)
        where = f"{shown.session.venue}, {shown.session.held_on}"
    else:
        assert shown.talk is not None
        title = shown.talk.title(first)
        count = len(shown.polls)
        where = f"{count} session" if count == 1 else f"{count} sessions"
    authors = "; ".join(shown.options.contributors) or "The presenter"
    year = shown.publication.published_at.year
    address = url if shown.session is not None else f"{url}/v{shown.version}"
    return (
        f"{authors} ({year}). {title}: audience answers ({where}), version {shown.version} "
        f"[Data set]. Licence {shown.options.licence}. {address}"
    )
