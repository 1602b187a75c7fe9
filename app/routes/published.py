"""The presenter's form for published counts: results that arrive as totals (another tool, a
show of hands, a publication), typed per option or uploaded as CSV, become a session of their
own (``app.published``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import export, sessions
from app.db import SessionDep
from app.deps import choose_language, render
from app.errors import DomainError, Invalid
from app.published import create_unlinked_session
from app.security import PresenterPageDep

router = APIRouter(prefix="/presenter", tags=["presenter"], include_in_schema=False)


# --------------------------------------------------------------------------- published counts

PublishedForm = dict[str, str]


async def _published_form(request: Request) -> tuple[PublishedForm, str]:
    """The form's fields (text) and the uploaded CSV's text ("" without one); read here, so
    that the handler stays a plain ``def`` on the database's thread pool."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get("file")
    text = ""
    if upload is not None and not isinstance(upload, str):
        raw = await upload.read(export.TOTALS_CSV_LIMIT + 1)
        text = raw.decode("utf-8", errors="replace")
    return fields, text


PublishedFormDep = Annotated[tuple[PublishedForm, str], Depends(_published_form)]


def _typed_counts(
    fields: PublishedForm,
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, int]]]]:
    """The counts typed into the form: ``n.<phase>.<option>`` (totals) and
    ``t.<revote>.<first>.<then>`` (transitions); blank fields are not given."""
    totals: dict[str, dict[str, int]] = {}
    transitions: dict[str, dict[str, dict[str, int]]] = {}
    for name, value in fields.items():
        value = value.strip()
        parts = name.split(".")
        if not value or parts[0] not in ("n", "t"):
            continue
        if not value.isdigit():
            raise Invalid(f"'{value}' is not a whole number", code="bad_count")
        if parts[0] == "n" and len(parts) == 3:
            totals.setdefault(parts[1], {})[parts[2]] = int(value)
        elif parts[0] == "t" and len(parts) == 4:
            transitions.setdefault(parts[1], {}).setdefault(parts[2], {})[parts[3]] = int(value)
    return totals, transitions


def _published_page(
    request: Request,
    db: SessionDep,
    slug: str,
    form: PublishedForm | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    talk = sessions.get_talk(db, slug)
    lang = choose_language(request, request.query_params.get("lang"))
    return render(
        request,
        "pages/presenter/published.html",
        {
            "talk": sessions.talk_public(db, talk, lang),
            "form": form or {},
            "error": error,
            "today": date.today().isoformat(),
            "columns": "phase,choice,count,from_choice",
            "moves_open": any(k.startswith("t.") and v.strip() for k, v in (form or {}).items()),
        },
        status_code=status_code,
    )


@router.get("/talks/{slug}/published", response_class=HTMLResponse)
def published_page(slug: str, request: Request, db: SessionDep, _: PresenterPageDep) -> Response:
    """The form for a session of published counts: totals typed per option per phase (and the
    revote rows that were published), or a CSV."""
    return _published_page(request, db, slug)


@router.post("/talks/{slug}/published", response_class=HTMLResponse)
def add_published(
    slug: str,
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    sent: PublishedFormDep,
) -> Response:
    """Stores the counts as an unlinked session (the CSV, when one is sent, instead of the
    typed counts) and shows its results; refused, the form again with what is wrong."""
    fields, csv_text = sent
    try:
        day = fields.get("held_on", "").strip()
        held_on = date.fromisoformat(day) if day else None
    except ValueError:
        return _published_page(request, db, slug, fields, "pres_error_date", 422)
    try:
        if csv_text.strip():
            totals, transitions = export.read_totals_csv(csv_text)
        else:
            totals, transitions = _typed_counts(fields)
        poll = create_unlinked_session(
            db,
            talk_slug=slug,
            venue=fields.get("venue", "")[:200],
            source=fields.get("source", "")[:500],
            totals=totals,
            transitions=transitions,
            held_on=held_on,
            language=fields.get("language") or None,
        )
    except DomainError as exc:
        db.rollback()
        if exc.code == "unknown_talk":
            raise
        fields["detail"] = exc.detail
        return _published_page(request, db, slug, fields, "pres_published_refused", exc.status)
    return RedirectResponse(
        f"/presenter/sessions/{poll.code}/results", status_code=status.HTTP_303_SEE_OTHER
    )
