"""Results that outlive the talk: a session's prediction locked before it (the API and the
control page's forms). Thin: each handler calls one service (``app.predictions``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app import predictions, sessions
from app.db import SessionDep
from app.deps import SettingsDep, render
from app.errors import DomainError, NotFound
from app.models import PollSession, PredictionIn, PredictionOut
from app.routes.docs import PRESENTER, errors
from app.security import PresenterDep, PresenterPageDep

router = APIRouter(tags=["results"])
pages = APIRouter(include_in_schema=False)

API_ERRORS = errors(400, *PRESENTER, 404, 409, 413, 422, 503)


# --------------------------------------------------------------------------- the API


@router.get(
    "/api/v1/sessions/{code}/prediction",
    response_model=PredictionOut,
    responses=API_ERRORS,
)
def get_prediction(code: str, db: SessionDep, _: PresenterDep) -> PredictionOut:
    """The session's prediction, its amendments (each with the canonical text its SHA-256 is
    computed from), and the latest claims against the room's results."""
    poll = sessions.get_session(db, code)
    found = predictions.session_record(db, poll)
    if found is None:
        raise NotFound("the session has no prediction", code="no_prediction")
    return found


@router.post(
    "/api/v1/sessions/{code}/prediction",
    status_code=status.HTTP_201_CREATED,
    response_model=PredictionOut,
    responses=API_ERRORS,
)
def lock_prediction(
    code: str, body: PredictionIn, db: SessionDep, _: PresenterDep
) -> PredictionOut:
    """Lock the session's prediction (before its first phase opens; once). It can never be
    changed afterwards, only amended (``.../prediction/amendments``)."""
    poll = sessions.get_session(db, code)
    predictions.lock(db, poll, body)
    found = predictions.session_record(db, poll)
    assert found is not None
    return found


@router.post(
    "/api/v1/sessions/{code}/prediction/amendments",
    status_code=status.HTTP_201_CREATED,
    response_model=PredictionOut,
    responses=API_ERRORS,
)
def amend_prediction(
    code: str, body: PredictionIn, db: SessionDep, _: PresenterDep
) -> PredictionOut:
    """Amend the prediction, visibly: the amendment is time-stamped and hashed with the hash of
    the entry before it, says why (``text``), and its claims are the ones set against the
    results from then on. Amendments made after a phase opened say so."""
    poll = sessions.get_session(db, code)
    predictions.amend(db, poll, body)
    found = predictions.session_record(db, poll)
    assert found is not None
    return found


# --------------------------------------------------------------------------- the control page


def prediction_context(db: Session, poll: PollSession) -> dict[str, Any]:
    """What the control page's prediction box shows."""
    return {
        "prediction_entries": predictions.entries(db, poll),
        "prediction_open": not predictions.phase_opened(db, poll) and not poll.ended,
    }


FORM_ERRORS = {
    "prediction_locked": "pred_error_locked",
    "prediction_too_late": "pred_error_too_late",
    "no_prediction": "pred_error_none",
    "amendment_without_text": "pred_error_why",
    "session_ended": "pred_error_ended",
}

NumberField = Annotated[str, Form(max_length=32)]


def _form_prediction(fields: dict[str, str], text: str) -> PredictionIn:
    values: dict[str, Any] = {"text": text}
    for name, raw in fields.items():
        if raw.strip():
            values[name] = raw.strip().replace(",", ".")
    return PredictionIn.model_validate(values)


def _answer_form(
    request: Request,
    db: Session,
    settings: Any,
    poll: PollSession,
    fields: dict[str, str],
    text: str,
    amendment: bool,
) -> Response:
    from app.routes.presenter import _control_context

    try:
        given = _form_prediction(fields, text)
        if amendment:
            predictions.amend(db, poll, given)
        else:
            predictions.lock(db, poll, given)
    except (ValidationError, DomainError) as exc:
        db.rollback()
        status_code = exc.status if isinstance(exc, DomainError) else 422
        key = (
            FORM_ERRORS.get(exc.code, "pred_error_generic")
            if isinstance(exc, DomainError)
            else ("pred_error_malformed")
        )
        context = _control_context(request, db, settings, poll)
        context |= prediction_context(db, poll)
        context["prediction_error"] = key
        context["prediction_form"] = {**fields, "text": text, "amend": amendment}
        return render(request, "pages/presenter/control.html", context, status_code)
    return RedirectResponse(
        f"/presenter/sessions/{poll.code}#prediction", status_code=status.HTTP_303_SEE_OTHER
    )


@pages.post("/presenter/sessions/{code}/prediction", response_class=HTMLResponse)
def lock_prediction_form(
    code: str,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    _: PresenterPageDep,
    own_below: NumberField = "",
    own_above: NumberField = "",
    perceived_below: NumberField = "",
    perceived_above: NumberField = "",
    gap: NumberField = "",
    gap_margin: NumberField = "",
    text: Annotated[str, Form(max_length=4000)] = "",
    amend: Annotated[str, Form(pattern="^(|1)$")] = "",
) -> Response:
    """The control page's prediction form: lock it (before the first question opens), or,
    with ``amend=1``, add an amendment."""
    poll = sessions.get_session(db, code)
    fields = {
        "own_below": own_below,
        "own_above": own_above,
        "perceived_below": perceived_below,
        "perceived_above": perceived_above,
        "gap": gap,
        "gap_margin": gap_margin,
    }
    return _answer_form(request, db, settings, poll, fields, text, amend == "1")
