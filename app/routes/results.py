"""Results: the JSON results of a session and of a talk, the results pages, the exports (CSV,
JSON, codebook, charts as SVG/PNG, a printable report). Thin: each handler calls one service."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import StringConstraints

from app import charts, export, i18n, package, predictions, results, sessions
from app.db import SessionDep
from app.deps import SettingsDep, TemplatesDep, choose_language, render
from app.errors import NotFound
from app.models import PollSession, Talk
from app.results.schema import SessionResultsJSON, TalkResultsJSON
from app.routes.docs import PRESENTER, errors
from app.routes.publish import publication_context
from app.security import PresenterDep, PresenterPageDep

router = APIRouter(tags=["results"])

API_ERRORS = errors(*PRESENTER, 404, 422, 503)
# The results pages are the presenter's HTML, like the other pages: not part of the API.

LangQuery = Annotated[str | None, Query(max_length=16, description="language, e.g. en, zh-Hans")]


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _session_lang(poll: PollSession, wanted: str | None) -> str:
    return i18n.supported(wanted) or i18n.supported(poll.language) or i18n.DEFAULT_LANGUAGE


def _talk_lang(request: Request, talk: Talk, wanted: str | None) -> str:
    """An explicit ``lang`` first; else the request's language if the talk has it, else the
    talk's first language."""
    if chosen := i18n.supported(wanted):
        return chosen
    negotiated = choose_language(request)
    if negotiated in talk.languages:
        return negotiated
    return i18n.supported(talk.languages[0]) or i18n.DEFAULT_LANGUAGE


def _json(document: Any, filename: str | None = None) -> Response:
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers=_attachment(filename) if filename else None,
    )


# --------------------------------------------------------------------------- JSON results


@router.get("/api/v1/sessions/{code}/results", response_model_by_alias=True, responses=API_ERRORS)
def session_results(code: str, db: SessionDep, _: PresenterDep) -> SessionResultsJSON:
    """The session's results: phases, gap, shift, cross-tabs (docs/methods.md says what each
    figure is)."""
    poll = sessions.get_session(db, code)
    return results.session_results_model(results.session_results(db, poll))


@router.get("/api/v1/talks/{slug}/results", response_model_by_alias=True, responses=API_ERRORS)
def talk_results(slug: str, db: SessionDep, _: PresenterDep) -> TalkResultsJSON:
    """The talk's results pooled over its sessions, the gap pooled with inverse-variance weights
    (DerSimonian-Laird), and each session's own results under ``sessions``."""
    talk = sessions.get_talk(db, slug)
    return results.talk_results_model(results.talk_results(db, talk))


# --------------------------------------------------------------------------- exports


@router.get(
    "/api/v1/talks/{slug}/export.csv", response_class=StreamingResponse, responses=API_ERRORS
)
def talk_export_csv(
    slug: str, db: SessionDep, _: PresenterDep, bom: Annotated[bool, Query()] = False
) -> StreamingResponse:
    """Every response of every session of the talk, one row each (formula-safe); ``bom=1``:
    with a byte-order mark, for Excel."""
    talk = sessions.get_talk(db, slug)
    lines = list(export.csv_lines(export.talk_rows(db, talk)))
    if bom:
        lines.insert(0, export.UTF8_BOM)
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(export.csv_filename(talk.slug, bom)),
    )


@router.get("/api/v1/talks/{slug}/export.json", responses=API_ERRORS)
def talk_export_json(slug: str, db: SessionDep, _: PresenterDep) -> Response:
    talk = sessions.get_talk(db, slug)
    return _json(export.talk_document(db, talk), f"beliefgap-{talk.slug}.json")


@router.get("/api/v1/sessions/{code}/codebook.json", responses=API_ERRORS)
def session_codebook(code: str, db: SessionDep, _: PresenterDep) -> Response:
    """What the export's columns, phases and option ids mean, in every language of the talk."""
    poll = sessions.get_session(db, code)
    talk = sessions.session_talk(db, poll)
    codebook = export.codebook(db, talk, poll.version_id)
    return _json(codebook, f"beliefgap-{poll.code}-codebook.json")


@router.get("/api/v1/talks/{slug}/codebook.json", responses=API_ERRORS)
def talk_codebook(slug: str, db: SessionDep, _: PresenterDep) -> Response:
    """What the talk export's columns, phases and option ids mean, and the talk's unlinked
    sessions with their published counts (not rows of the CSV)."""
    talk = sessions.get_talk(db, slug)
    return _json(export.talk_codebook(db, talk), f"beliefgap-{talk.slug}-codebook.json")


LicenceQuery = Annotated[
    str,
    Query(
        max_length=16,
        description="the data's licence: CC-BY-4.0 (the default: reuse with credit) or CC0-1.0",
    ),
]
ExactQuery = Annotated[
    bool,
    Query(description="exact answer times (by default each answer's time is its phase's)"),
]
ContributorQuery = Annotated[
    list[Annotated[str, StringConstraints(max_length=200)]],
    Query(max_length=200, description="a name to credit as the data's creator (repeatable)"),
]
"""Not ``| None``: a query cannot tell a missing list from an empty one, and as ``anyOf`` with
null any scalar a client sends reads as a one-name list the schema said it was not."""


def _package_options(
    licence: str, exact_times: bool, contributor: list[str]
) -> package.PackageOptions:
    names = tuple(name.strip() for name in contributor if name.strip())
    return package.PackageOptions(licence=licence, exact_times=exact_times, contributors=names)


def _zip(name: str, content: bytes) -> Response:
    return Response(content, media_type="application/zip", headers=_attachment(name))


@router.get(
    "/api/v1/sessions/{code}/package.zip",
    response_class=Response,
    responses=API_ERRORS | {200: {"content": {"application/zip": {}}}},
)
def session_package(
    code: str,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterDep,
    licence: LicenceQuery = package.DEFAULT_LICENCE,
    exact_times: ExactQuery = False,
    contributor: ContributorQuery = [],  # noqa: B006  (FastAPI copies defaults)
) -> Response:
    """The session's dataset package (zip): a Frictionless Data Package v2 (``datapackage.json``
    and CSV tables of responses, sessions, questions and options), ``CITATION.cff``, the codebook
    as Markdown and DDI-Codebook XML, ``methods.md`` and the results JSON."""
    options = _package_options(licence, exact_times, contributor)
    poll = sessions.get_session(db, code)
    url = publication_context(db, settings, poll=poll)["publication_url"]
    return _zip(*package.session_package(db, poll, replace(options, url=url)))


@router.get(
    "/api/v1/talks/{slug}/package.zip",
    response_class=Response,
    responses=API_ERRORS | {200: {"content": {"application/zip": {}}}},
)
def talk_package(
    slug: str,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterDep,
    licence: LicenceQuery = package.DEFAULT_LICENCE,
    exact_times: ExactQuery = False,
    contributor: ContributorQuery = [],  # noqa: B006  (FastAPI copies defaults)
) -> Response:
    """The talk's dataset package (zip) over the sessions its pooled results are built from
    (never a rehearsal); its version is raised with every session it holds. Where the results
    are published, ``CITATION.cff`` and ``datapackage.json`` point to the public page."""
    options = _package_options(licence, exact_times, contributor)
    talk = sessions.get_talk(db, slug)
    url = publication_context(db, settings, talk=talk)["publication_url"]
    return _zip(*package.talk_package(db, talk, replace(options, url=url)))


def _chart_file(
    templates: Jinja2Templates, chart_name: str, named: dict[str, Any], stem: str
) -> Response:
    name, dot, ext = chart_name.rpartition(".")
    if not dot or ext not in ("svg", "png"):
        raise NotFound(f"no chart file '{chart_name}' (use NAME.svg or NAME.png)", code="no_chart")
    chart = named.get(name)
    if chart is None:
        names = ", ".join(sorted(named)) or "none yet"
        raise NotFound(f"no chart '{name}' here (charts: {names})", code="no_chart")
    svg = export.render_svg(templates.env, chart)
    filename = f"beliefgap-{stem}-{name}-{chart.lang}.{ext}"
    headers = {"Content-Disposition": f'inline; filename="{filename}"'}
    if ext == "svg":
        return Response(svg, media_type="image/svg+xml", headers=headers)
    return Response(export.svg_to_png(svg), media_type="image/png", headers=headers)


@router.get("/api/v1/sessions/{code}/charts/{chart_name}", responses=API_ERRORS)
def session_chart(
    code: str,
    chart_name: str,
    db: SessionDep,
    templates: TemplatesDep,
    _: PresenterDep,
    lang: LangQuery = None,
) -> Response:
    """A chart of the session as ``NAME.svg`` or ``NAME.png``: gap, shift, shift-matrix, scale,
    phase-<phase id>."""
    poll = sessions.get_session(db, code)
    found = results.session_results(db, poll)
    return _chart_file(
        templates, chart_name, charts.session_charts(found, _session_lang(poll, lang)), poll.code
    )


@router.get("/api/v1/talks/{slug}/charts/{chart_name}", responses=API_ERRORS)
def talk_chart(
    slug: str,
    chart_name: str,
    request: Request,
    db: SessionDep,
    templates: TemplatesDep,
    _: PresenterDep,
    lang: LangQuery = None,
) -> Response:
    """A chart of the talk: forest (the gap per venue, pooled) or any pooled session chart."""
    talk = sessions.get_talk(db, slug)
    found = results.talk_results(db, talk)
    chosen = _talk_lang(request, talk, lang)
    named = charts.session_charts(found.pooled, chosen)
    if found.forest:
        named["forest"] = charts.forest_chart(found, chosen)
    return _chart_file(templates, chart_name, named, talk.slug)


# --------------------------------------------------------------------------- pages


@router.get(
    "/presenter/sessions/{code}/results", response_class=HTMLResponse, include_in_schema=False
)
def session_results_page(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterPageDep,
    lang: LangQuery = None,
) -> HTMLResponse:
    poll = sessions.get_session(db, code)
    found = results.session_results(db, poll)
    entries = predictions.entries(db, poll)
    return render(
        request,
        "pages/results_session.html",
        {
            "lang": _session_lang(poll, lang),
            "results": found,
            "participants": sessions.participant_count(db, poll),
            "downloads": f"/api/v1/sessions/{poll.code}/charts",
            "prediction": predictions.record(poll, entries, results.gap_json(found.gap)),
            "publish_action": f"/presenter/sessions/{poll.code}/publish",
        }
        | publication_context(db, settings, poll=poll),
    )


@router.get("/presenter/talks/{slug}/results", response_class=HTMLResponse, include_in_schema=False)
def talk_results_page(
    slug: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterPageDep,
    lang: LangQuery = None,
) -> HTMLResponse:
    talk = sessions.get_talk(db, slug)
    found = results.talk_results(db, talk)
    return render(
        request,
        "pages/results_talk.html",
        {
            "lang": _talk_lang(request, talk, lang),
            "talk": found,
            "downloads": f"/api/v1/talks/{talk.slug}/charts",
            "session_links": True,
            "publish_action": f"/presenter/talks/{talk.slug}/publish",
            "talk_predictions": predictions.talk_records(
                db, results.sessions_to_pool(db, talk).polls, found.sessions
            ),
        }
        | publication_context(db, settings, talk=talk),
    )


@router.get(
    "/presenter/sessions/{code}/report.html", response_class=HTMLResponse, include_in_schema=False
)
def session_report(
    code: str,
    db: SessionDep,
    templates: TemplatesDep,
    _: PresenterPageDep,
    lang: LangQuery = None,
) -> HTMLResponse:
    """A self-contained report (inline CSS and SVG) to save or print to PDF."""
    poll = sessions.get_session(db, code)
    html = export.report_html(
        templates.env,
        _session_lang(poll, lang),
        session=results.session_results(db, poll),
        participants=sessions.participant_count(db, poll),
    )
    return HTMLResponse(html)


@router.get(
    "/presenter/talks/{slug}/report.html", response_class=HTMLResponse, include_in_schema=False
)
def talk_report(
    slug: str,
    request: Request,
    db: SessionDep,
    templates: TemplatesDep,
    _: PresenterPageDep,
    lang: LangQuery = None,
) -> HTMLResponse:
    talk = sessions.get_talk(db, slug)
    html = export.report_html(
        templates.env,
        _talk_lang(request, talk, lang),
        talk=results.talk_results(db, talk),
    )
    return HTMLResponse(html)
