"""The pages and their JSON twins: each page's data is made once (a ``*_data`` function)
and shown either as HTML (a template) or as JSON at the same path under ``/api``.

Path and query values are checked before any query: an id must be digits within
``1..MAX_ID`` (else 404, never a 500); the search text is bound, never part of SQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import orjson
from markupsafe import Markup
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rules.bounds import MAX_ID
from streams.console import queries
from streams.console.campaigns import campaigns_data
from streams.console.charts import daily_chart
from streams.console.contact_page import contact_chart, contact_data
from streams.console.preview import MAX_PATH, as_of_param, preview_data
from streams.console.runs import runs_data
from streams.console.state import ConsoleState

SEARCH_LISTED = 20


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def path_id(raw: str) -> int | None:
    """A path's id, or None when it is not one (letters, zero, more than ``MAX_ID``)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def _read(state: ConsoleState, fn: Callable[[Connection], Any]) -> Awaitable[Any]:
    """``fn`` over a read-only connection, in a worker thread (the event loop stays free)."""

    def go() -> Any:
        with state.store.engine.connect() as conn:
            return fn(conn)

    return run_in_threadpool(go)


def _page(state: ConsoleState, request: Request, template: str, data: dict[str, Any], status: int = 200, **extra: Any) -> HTMLResponse:
    html = state.templates.get_template(template).render(
        data=data, request=request, broker=state.broker, page=template.removesuffix(".html"), **extra
    )
    return HTMLResponse(html, status_code=status)


def _not_found(state: ConsoleState, request: Request, api: bool, message: str) -> Response:
    if api:
        return JSON({"error": message}, status_code=404)
    return _page(state, request, "not_found.html", {"error": message}, status=404)


# --- the dashboard -----------------------------------------------------------------------------


async def _dashboard(state: ConsoleState) -> dict[str, Any]:
    data = dict(await state.dashboard.current())  # counted in the background (streams.console.refresher)
    data["broker"] = (await state.broker_view.current()).as_json() if state.broker_view else None
    return data


async def dashboard(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    data = await _dashboard(state)
    chart = Markup(daily_chart(data["days"], data["email_types"], data["daily_cap"]))  # charts.py escapes its text
    return _page(state, request, "dashboard.html", data, chart=chart)


async def api_dashboard(request: Request) -> Response:
    return JSON(await _dashboard(request.app.state.console))


# --- a contact -------------------------------------------------------------------------------


async def _contact(request: Request, api: bool) -> Response:
    state: ConsoleState = request.app.state.console
    raw = request.path_params["contact_id"]
    cid = path_id(raw)
    if cid is None:
        return _not_found(state, request, api, f"not a contact id: {raw[:40]!r} (a whole number 1..{MAX_ID})")
    today = state.today()
    data = await _read(state, lambda conn: contact_data(conn, cid, state.config, today))
    if data is None:
        return _not_found(state, request, api, f"no contact with id {cid}")
    if api:
        return JSON(data)
    return _page(state, request, "contact.html", data, chart=Markup(contact_chart(data)))  # escaped by charts.py


async def contact(request: Request) -> Response:
    return await _contact(request, api=False)


async def api_contact(request: Request) -> Response:
    return await _contact(request, api=True)


def _search(conn: Connection, typed: str) -> dict[str, Any]:
    """By id (digits) or e-mail address (exact, else the addresses starting with it)."""
    cid = path_id(typed)
    if cid is not None and queries.contact(conn, cid) is not None:
        return {"q": typed, "exact": cid, "matches": []}
    matches = queries.contacts_by_email_prefix(conn, typed, SEARCH_LISTED) if typed else []
    exact = next((m["id"] for m in matches if m["email"] == typed), None)
    return {"q": typed, "exact": exact, "matches": matches}


async def _search_page(request: Request, api: bool) -> Response:
    state: ConsoleState = request.app.state.console
    typed = request.query_params.get("q", "").strip()[:200]
    data = await _read(state, lambda conn: _search(conn, typed))
    if api:
        return JSON(data)
    if data["exact"] is not None:
        return RedirectResponse(f"/contacts/{quote(str(data['exact']))}", status_code=303)
    return _page(state, request, "search.html", data)


async def search(request: Request) -> Response:
    return await _search_page(request, api=False)


async def api_search(request: Request) -> Response:
    return await _search_page(request, api=True)


# --- campaigns, runs, dead letters --------------------------------------------------------------


async def campaigns(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    return _page(state, request, "campaigns.html", await _read(state, lambda c: campaigns_data(c, state.config)))


async def api_campaigns(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    return JSON(await _read(state, lambda c: campaigns_data(c, state.config)))


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before")
    return None if raw is None else path_id(raw)


async def runs(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    before = _before(request)
    return _page(state, request, "runs.html", await _read(state, lambda c: runs_data(c, before)))


async def api_runs(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    before = _before(request)
    return JSON(await _read(state, lambda c: runs_data(c, before)))


async def _deadletters(state: ConsoleState) -> dict[str, Any]:
    if state.broker_view is None:
        return {
            "broker": None,
            "note": "no broker given: dead letters are kept on the deadletter topic of a deployment "
            "with Kafka (mailwindow serve --broker HOST:PORT --prefix P)",
            "deadletters": [],
        }
    snap = await state.broker_view.current()
    return {"broker": state.broker, **snap.as_json(), "deadletters": snap.deadletters}


async def deadletters(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    return _page(state, request, "deadletters.html", await _deadletters(state))


async def api_deadletters(request: Request) -> Response:
    return JSON(await _deadletters(request.app.state.console))


# --- a sweep's dry run (issue 15) -------------------------------------------------------------


async def _preview(request: Request) -> tuple[dict[str, Any], int]:
    """The form's values and, when a config path is given, the dry run's result (or error)."""
    state: ConsoleState = request.app.state.console
    config = request.query_params.get("config", "").strip()[:MAX_PATH]
    raw_as_of = request.query_params.get("as_of")
    as_of = as_of_param(raw_as_of, state.today())
    data: dict[str, Any] = {"config": config, "as_of": (raw_as_of or "").strip()[:40], "error": None, "result": None}
    if isinstance(as_of, str):
        return {**data, "error": as_of}, 400
    data["as_of"] = as_of.isoformat()
    if not config:
        return data, 200
    found = await run_in_threadpool(preview_data, state.store, config, as_of, state.scratch, state.preview_lock)
    return found, (400 if found["error"] else 200)


async def preview(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    data, status = await _preview(request)
    return _page(state, request, "preview.html", data, status=status)


async def api_preview(request: Request) -> Response:
    data, status = await _preview(request)
    return JSON(data, status_code=status)


# --- /metrics ----------------------------------------------------------------------------------


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    state: ConsoleState = request.app.state.console
    state.metrics.database.dashboard = await state.dashboard.current()
    if state.broker_view is not None:
        state.metrics.database.broker = await state.broker_view.current()
    body = await run_in_threadpool(generate_latest, state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def stamp(value: object) -> str:
    """A template filter: a date or time as text, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)
