"""The routes a room sends by the thousand (a phone's join page, vote form and panel; the API's
vote), answered ahead of the app's own layers.

Every request to a FastAPI app passes its exception layer, its exit-stack layer and its router,
which matches the request against the routes in order (an included router's routes twice)
before the route itself resolves its dependencies. For a room's requests that was more than
their own work: the busy routes are plain Starlette routes of a function taking the request,
matched here, inside ``RequestGuard`` (guarded as every request is), their exceptions handled
by the app's handlers as the exception layer would. The phone's routes stay in the app's
router too, and the API's vote has its documented route there: a request under a root path
finds them.

A busy route may leave a request to the app's own route (``PassOn``): the API's vote takes the
bodies that read as a vote and passes on every other, so whatever FastAPI answers to a
malformed one (and documents in ``/openapi.json``) stays its answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PassOn(Exception):
    """Raised by a busy route's function for a request it leaves to the app's own route, with
    the body it has read (the request goes on with it)."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body


class Endpoint:
    """A route's function as the route's ASGI app, handling its exceptions with the app's
    exception handlers as ``ExceptionMiddleware`` would (``BusyRoutes`` calls it ahead of that
    layer). Starlette's own wrapper would handle them a second time on the way, at the cost of
    a layer of closures on every request."""

    def __init__(self, function: Callable[[Request], Awaitable[Response]]) -> None:
        self.function = function

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response: Response | None = await self.function(request)
        except PassOn:
            raise
        except Exception as exc:
            handler = _exception_handler(request.app.exception_handlers, exc)
            if handler is None:
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            exc.__traceback__ = None  # a reused exception would gather tracebacks
        if response is not None:
            await response(scope, receive, send)


def _exception_handler(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's handler for ``exc``, found as ``ExceptionMiddleware`` finds it: an
    HTTPException's status first, then the exception's classes in order."""
    if isinstance(exc, HTTPException) and (found := handlers.get(exc.status_code)) is not None:
        return found
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)


class BusyRoutes:
    """``routes`` matched and answered ahead of the app's exception, exit-stack and routing
    layers (installed inside ``RequestGuard``). Anything else, a busy path with a method its
    route does not take, and a request its route passes on go on to the app."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.prefixes = tuple({route.path.split("{", 1)[0] for route in routes})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope["router"] = scope["app"].router  # url_for in the templates
                    try:
                        await route.app(scope, receive, send)
                    except PassOn as passed:
                        await self.app(scope, _replay(passed.body, receive), send)
                    return
        await self.app(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for a request whose body has been read: the body, then what comes next
    (the client leaving)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
