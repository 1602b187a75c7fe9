"""Talks as the presenter edits them: the JSON/TOML API (``/api/v1/talks``) and the editor on the
dashboard (``/presenter/talks``). Thin: the checks and the versions are ``app.talks``; the
editor's form is ``app.editor``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import escape
from starlette.convertors import Convertor, register_url_convertor

from app import editor, i18n, talkcheck, talkfile, talks
from app.db import SessionDep
from app.deps import choose_language, form_fields, render
from app.errors import Conflict, DomainError, Invalid
from app.models import TalkCopy, TalkStored
from app.routes.docs import PRESENTER, ErrorOut, errors
from app.security import PresenterDep, PresenterPageDep
from app.sessions import best_language, list_talks

router = APIRouter(prefix="/api/v1/talks", tags=["talks"])

TOML_TYPES = ("application/toml", "text/toml", "application/x-toml")
T = TypeVar("T")


def _invalid(exc: talks.TalkInvalid) -> JSONResponse:
    return JSONResponse(
        {"detail": [p.as_dict() for p in exc.problems], "code": exc.code},
        status_code=422,
    )


def _conflict(exc: Conflict, slug: str) -> JSONResponse:
    body: dict[str, Any] = {"detail": exc.detail, "code": exc.code}
    if exc.code == "talk_read_only":
        body["copy"] = {"method": "POST", "url": f"/api/v1/talks/{slug}/copy", "body": {"slug": ""}}
    return JSONResponse(body, status_code=status.HTTP_409_CONFLICT)


TALK_WORKERS = 2
"""Talks read, checked and stored at once (the API and the editor); more wait their turn. The
work runs in worker threads, never on the event loop that serves the room's votes and streams,
and is bounded: the body by ``app.limits.TALK_BODY_LIMIT``, a TOML reading by
``talkfile.TOML_SECONDS`` in a process of its own, the problems by ``talkcheck.MAX_PROBLEMS``."""


async def off_the_loop(request: Request, work: Callable[[], T]) -> T:
    """``work()`` in a worker thread, at most ``TALK_WORKERS`` at a time for the app."""
    return await anyio.to_thread.run_sync(work, limiter=request.app.state.talk_work)


async def _talk_body(request: Request) -> Callable[[], Any]:
    """The talk in the request, to be read off the event loop: TOML (``application/toml``) or
    JSON; 415 for anything else (at once), 422 for a body that does not parse."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in (*TOML_TYPES, "application/json", ""):
        raise DomainError(
            "send the talk as application/toml or application/json", code="unsupported_media_type"
        )
    body = await request.body()

    def read() -> Any:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise talks.TalkInvalid([talkcheck.Problem("the body is not UTF-8 text")]) from None
        if content_type in TOML_TYPES:
            try:
                return talkfile.parse_toml_isolated(text)
            except talkcheck.TalkFileError as exc:
                raise talks.TalkInvalid(exc.problems) from None
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            message = f"not valid JSON: {exc}"[:200]
            raise talks.TalkInvalid([talkcheck.Problem(message)]) from None
        if isinstance(raw, dict):
            raw.pop("version", None)  # what GET adds: a talk read back is accepted
        return raw

    return read


_TALK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "a talk in the talk file format (docs/talk-format.md)",
        "content": {
            "application/toml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


class _TalkSlug(Convertor[str]):
    """A talk's slug in an address (the grammar of ``talkcheck.SLUG_RE``): so ``/{slug}`` does not
    also answer for ``/{slug}.toml``, and a 405 there names only what the address answers."""

    regex = "[a-z0-9][a-z0-9-]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("talk_slug", _TalkSlug())

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **errors(*PRESENTER, 413, 503),
    409: {
        "model": ErrorOut,
        "description": "The slug is taken, or the talk cannot be edited (copy it).",
    },
    415: {"model": ErrorOut, "description": "The body is neither TOML nor JSON."},
    422: {
        "model": ErrorOut,
        "description": "Every problem of the talk, each with loc, phase, option, field, msg.",
    },
}
_READ_RESPONSES = errors(*PRESENTER, 404, 422, 503)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TalkStored,
    responses=_RESPONSES,
    openapi_extra=_TALK_BODY,
)
async def create_talk(request: Request, db: SessionDep, _: PresenterDep) -> Response:
    """A new talk (version 1) in the talk file format, as TOML or the same structure as JSON."""
    try:
        read = await _talk_body(request)
        version = await off_the_loop(request, lambda: talks.create_talk(db, read()))
    except talks.TalkInvalid as exc:
        return _invalid(exc)
    except Conflict as exc:
        return _conflict(exc, "")
    except DomainError as exc:
        if exc.code == "unsupported_media_type":
            return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=415)
        raise
    return JSONResponse(
        {"slug": version.content["slug"], "version": version.number},
        status_code=status.HTTP_201_CREATED,
    )


@router.put(
    "/{slug:talk_slug}",
    response_model=TalkStored,
    responses={**errors(404), **_RESPONSES},
    openapi_extra=_TALK_BODY,
)
async def update_talk(slug: str, request: Request, db: SessionDep, _: PresenterDep) -> Response:
    """A new version of the talk; sessions keep the version they were created with. A talk with
    problems changes nothing (422); bundled and file talks cannot be edited (409: copy them)."""
    try:
        read = await _talk_body(request)
        version = await off_the_loop(request, lambda: talks.update_talk(db, slug, read()))
    except talks.TalkInvalid as exc:
        db.rollback()
        return _invalid(exc)
    except Conflict as exc:
        return _conflict(exc, slug)
    except DomainError as exc:
        if exc.code == "unsupported_media_type":
            return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=415)
        raise
    return JSONResponse({"slug": slug, "version": version.number})


@router.get(
    "/{slug}.toml",
    response_class=Response,
    responses={
        200: {
            "content": {"application/toml": {"schema": {"type": "string"}}},
            "description": "The talk file, which POST /api/v1/talks takes back.",
        },
        **_READ_RESPONSES,
    },
)
def export_talk_toml(slug: str, db: SessionDep, _: PresenterDep) -> Response:
    """The current version as a talk file (``POST`` takes it back)."""
    talk = talks.find_talk(db, slug)
    content = talks.current_version(db, talk).content
    return Response(
        talkfile.talk_to_toml(content),
        media_type="application/toml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{talk.slug}.toml"'},
    )


@router.get("/{slug:talk_slug}", responses=_READ_RESPONSES)
def get_talk(slug: str, db: SessionDep, _: PresenterDep) -> dict[str, Any]:
    """The current version in the talk file format's structure, with its ``version``."""
    talk = talks.find_talk(db, slug)
    return {**talks.current_version(db, talk).content, "version": talk.version}


@router.post(
    "/{slug}/copy",
    status_code=status.HTTP_201_CREATED,
    response_model=TalkStored,
    responses={**errors(400, 404), **_RESPONSES},
)
def copy_talk(slug: str, body: TalkCopy, db: SessionDep, _: PresenterDep) -> Response:
    """An editable copy of the talk's current version under a new slug."""
    try:
        version = talks.copy_talk(db, slug, body.slug)
    except talks.TalkInvalid as exc:
        return _invalid(exc)
    except Conflict as exc:
        return _conflict(exc, slug)
    return JSONResponse(
        {"slug": body.slug, "version": version.number}, status_code=status.HTTP_201_CREATED
    )


# --------------------------------------------------------------------------- the editor

pages = APIRouter(prefix="/presenter/talks", tags=["presenter"], include_in_schema=False)


def _editor_context(
    talk: dict[str, Any],
    *,
    ui: str = "en",
    mode: str,
    original: str,
    selected: int,
    preview_lang: str,
    problems: list[talkcheck.Problem] | None = None,
    saved: int | None = None,
    editable: bool = True,
) -> dict[str, Any]:
    if problems is None:
        problems = talkfile.talk_problems(talk)
    languages = [lang for lang in talk["languages"] if talkcheck.LANG_RE.match(lang)]
    lang = best_language(languages, preview_lang) if languages else "en"
    selected = max(0, min(selected, len(talk["phases"]) - 1))
    return {
        "talk": talk,
        "mode": mode,
        "original": original,
        "selected": selected,
        "preview_lang": lang,
        "preview": editor.preview(talk, selected, lang),
        "problems": editor.problems_by_slot(talk, problems, ui),
        # Every problem, those past the list's end too (its last one counts them).
        "problem_count": sum(
            int(p.args.get("n", 0)) if p.code == "more_problems" else 1 for p in problems
        ),
        "slots": editor.slot_paths(talk),
        "slot_id": editor.slot_id,
        "stance_options": editor.stance_options,
        "kinds": editor.KINDS,
        "saved": saved,
        "editable": editable,
    }


@pages.get("/new", response_class=HTMLResponse)
def start_page(
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    copy: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Start a talk: from the four-phase template, or as a copy of a talk."""
    return _start(request, db, form={"talk": copy})


def _start(
    request: Request,
    db: SessionDep,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/presenter/talk_start.html",
        {"talks": list_talks(db), "form": form or {}, "error": error},
        status_code=status_code,
    )


@pages.get("/new/edit", response_class=HTMLResponse)
def new_talk_editor(
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    slug: Annotated[str, Query(max_length=64)] = "",
    languages: Annotated[str, Query(max_length=200)] = "en, zh-Hans",
    perceived: Annotated[str, Query(pattern="^(options|estimate)$")] = "options",
) -> Response:
    """The editor on the four-phase template (nothing is stored until it is saved). A slug that
    names a stored talk opens that talk's editor instead: this address, come back to after the
    save (a reload, the back button), would otherwise show a blank template."""
    try:
        talks.find_talk(db, slug.strip())
    except DomainError:
        pass
    else:
        target = f"/presenter/talks/{slug.strip()}/edit"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    langs = editor.split_languages(languages) or ["en"]
    talk = editor.template_talk(slug.strip(), langs, estimate=perceived == "estimate")
    context = _editor_context(
        talk,
        ui=choose_language(request),
        mode="create",
        original="",
        selected=0,
        preview_lang=langs[0],
    )
    return render(request, "pages/presenter/talk_editor.html", context)


@pages.post("/copy", response_class=HTMLResponse)
async def copy_page(request: Request, db: SessionDep, _: PresenterPageDep) -> Response:
    fields = await form_fields(request)
    source, slug = fields.get("talk", "")[:64], fields.get("slug", "").strip()[:64]
    form = {"talk": source, "slug": slug}
    try:
        await off_the_loop(request, lambda: talks.copy_talk(db, source, slug))
    except talks.TalkInvalid as exc:
        return _start(request, db, form=form, error=exc.problems[0].message, status_code=422)
    except DomainError as exc:
        return _start(request, db, form=form, error=exc.detail, status_code=exc.status)
    return RedirectResponse(f"/presenter/talks/{slug}/edit", status_code=status.HTTP_303_SEE_OTHER)


@pages.get("/{slug}/edit", response_class=HTMLResponse)
def edit_page(
    slug: str,
    request: Request,
    db: SessionDep,
    _: PresenterPageDep,
    saved: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The editor on the talk's current version; a bundled or file talk is shown read-only with
    the offer to copy it."""
    row = talks.find_talk(db, slug)
    content = talks.current_version(db, row).content
    context = _editor_context(
        content,
        ui=choose_language(request),
        mode="update",
        original=row.slug,
        selected=0,
        preview_lang=content["languages"][0],
        saved=saved,
        editable=talks.talk_kind(row) == "editor",
    )
    context["version"] = row.version
    context["kind"] = talks.talk_kind(row)
    return render(request, "pages/presenter/talk_editor.html", context)


def _form_state(fields: dict[str, str]) -> tuple[dict[str, Any], str, str, int, str]:
    talk = editor.talk_from_form(fields)
    mode = "update" if fields.get("mode") == "update" else "create"
    original = fields.get("original", "")[:64]
    chosen = fields.get("selected", "")
    selected = editor.index(chosen) if chosen else 0
    if selected is None:
        raise editor.MalformedForm("selected")
    return talk, mode, original, selected, fields.get("preview_lang", "")[:16]


@pages.post("/editor", response_class=HTMLResponse)
async def editor_action(request: Request, db: SessionDep, _: PresenterPageDep) -> Response:
    """A button of the editor: add, remove or move a phase or an option, preview a phase, or
    save (a new talk, or a new version). The form comes back with every problem; a save with
    problems stores nothing (422)."""
    fields = await form_fields(request)
    try:
        return await off_the_loop(request, lambda: _editor_action(request, db, fields))
    except editor.MalformedForm as exc:
        return _malformed(request, exc)


def _editor_action(request: Request, db: SessionDep, fields: dict[str, str]) -> Response:
    talk, mode, original, selected, preview_lang = _form_state(fields)
    op = fields.get("op", "")[:40]
    htmx = request.headers.get("hx-request") == "true"
    template = (
        "partials/presenter/_talk_editor.html" if htmx else "pages/presenter/talk_editor.html"
    )

    def form_again(
        problems: list[talkcheck.Problem] | None = None, status_code: int = 200
    ) -> Response:
        """The editor as it was sent, with ``problems`` beside their fields."""
        context = _editor_context(
            talk,
            ui=choose_language(request),
            mode=mode,
            original=original,
            selected=selected,
            preview_lang=preview_lang,
            problems=problems,
        )
        return render(request, template, context, status_code=status_code)

    if op != "save":
        talk, selected = editor.apply_edit(talk, op, selected)
        return form_again()
    try:
        if mode == "update":
            if talk.get("slug") == "":
                talk["slug"] = original
            version = talks.update_talk(db, original, talk)
        else:
            version = talks.create_talk(db, talk)
    except talks.TalkInvalid as exc:
        db.rollback()
        return form_again(exc.problems, 422)
    except (Conflict, Invalid) as exc:
        db.rollback()
        taken = exc.code == "slug_taken"
        return form_again(
            [talkcheck.Problem(exc.detail, ("slug",) if taken else (), code=exc.code)], exc.status
        )
    target = f"/presenter/talks/{version.content['slug']}/edit?saved={version.number}"
    if htmx:
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


@pages.post("/editor/check", response_class=HTMLResponse)
async def editor_check(request: Request, _: PresenterPageDep) -> Response:
    """As the presenter types: every problem of the form, each swapped in next to its field,
    and the phone preview of the selected phase."""
    fields = await form_fields(request)
    try:
        return await off_the_loop(request, lambda: _editor_check(request, fields))
    except editor.MalformedForm as exc:
        return _malformed(request, exc)


def _malformed(request: Request, exc: editor.MalformedForm) -> Response:
    """400 for a form the editor never sends (typed by hand, or cut by a proxy): nothing done."""
    text = i18n.translate(choose_language(request), "ed_malformed_form", field=exc.field)
    return HTMLResponse(f"<p>{escape(text)}</p>", status_code=status.HTTP_400_BAD_REQUEST)


def _editor_check(request: Request, fields: dict[str, str]) -> Response:
    talk, mode, original, selected, preview_lang = _form_state(fields)
    context = _editor_context(
        talk,
        ui=choose_language(request),
        mode=mode,
        original=original,
        selected=selected,
        preview_lang=preview_lang,
    )
    return render(request, "partials/presenter/_talk_checks.html", context)
