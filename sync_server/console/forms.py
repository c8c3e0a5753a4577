"""The console's forms and streams: sign-in, sign-out, language, conflict resolution,
and the live-update stream. Every POST checks the form's CSRF token first."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, URLEncodedBody
from litestar.response import Redirect, ServerSentEvent

from schemas import Resolution

from ..services.console_sessions import ConsoleAuth, SignInRefused
from ..services.pulse import Pulse
from ..services.supervision import SupervisionService
from .web import LANG_COOKIE, SESSION_COOKIE, SIGNIN_CSRF_COOKIE, html, page_of, session_cookie

__all__ = ["ConsoleForms"]

def _safe_next(target: str | None) -> str:
    """Only a console path: never an open redirect to another site."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


class ConsoleForms(Controller):
    path = "/console"
    include_in_schema = False

    @get("/signin")
    async def signin_form(
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], next: Annotated[str | None, QueryParameter(max_length=500)] = None
    ) -> Response[Any]:
        page = await page_of(request, auth, required=False)
        if page.me is not None:
            return Redirect(_safe_next(next), status_code=303)
        token = secrets.token_urlsafe(24)
        cookie = Cookie(key=SIGNIN_CSRF_COOKIE, value=token, path="/console", httponly=True, samesite="lax", max_age=3600)
        return html(page, "signin.html", cookies=[cookie], signin_csrf=token, next=_safe_next(next), error=None)

    @post("/signin", status_code=200)
    async def signin(self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        page = await page_of(request, auth, required=False)
        page.me = None  # a sign-in form always carries the pre-session token
        page.check_csrf(data.get("csrf"))
        user_id, password, target = data.get("user", "").strip(), data.get("password", ""), _safe_next(data.get("next"))
        address = request.client.host if request.client else "unknown"
        try:
            session_id = await auth.sign_in(user_id, password, address)
        except SignInRefused as refused:
            status = {"limited": 429, "officer": 403}.get(refused.reason, 401)
            error = page.t("signin.limited", minutes=refused.retry_after_s // 60) if refused.reason == "limited" else page.t(f"signin.{refused.reason}")
            token = data.get("csrf", "")
            response = html(page, "signin.html", status_code=status, signin_csrf=token, next=target, error=error, user=user_id)
            if refused.retry_after_s:
                response.headers["Retry-After"] = str(refused.retry_after_s)
            return response
        response = Redirect(target, status_code=303)
        response.set_cookie(session_cookie(request, session_id, None))
        response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/console")
        return response

    @post("/signout", status_code=303)
    async def signout(self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        page = await page_of(request, auth)
        page.check_csrf(data.get("csrf"))
        await auth.sign_out(request.cookies.get(SESSION_COOKIE))
        response = Redirect("/console/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console")
        return response

    @get("/lang/{lang:str}")
    async def language(self, request: Request[Any, Any, Any], lang: FromPath[Literal["vi", "en"]], next: Annotated[str | None, QueryParameter(max_length=500)] = None) -> Redirect:
        """A preference, not an action on data: a GET that sets a cookie is harmless."""
        response = Redirect(_safe_next(next), status_code=303)
        response.set_cookie(Cookie(key=LANG_COOKIE, value=lang, path="/console", samesite="lax", max_age=365 * 86400))
        return response

    @post("/conflicts/{conflict_id:str}/resolve", status_code=303)
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        supervision: NamedDependency[SupervisionService],
        conflict_id: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Redirect:
        page = await page_of(request, auth)
        assert page.me is not None
        page.check_csrf(data.get("csrf"))
        choice: Literal["kept", "other"] = "other" if data.get("choice") == "other" else "kept"
        await supervision.resolve(page.me.principal, conflict_id, Resolution(choice=choice))
        back = {"done": conflict_id, **({"ward": data["ward"]} if data.get("ward") else {})}
        return Redirect(_safe_next(data.get("next")).split("?")[0] + "?" + urlencode(back), status_code=303)

    @get("/live")
    async def live(self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], pulse: NamedDependency[Pulse]) -> ServerSentEvent:
        """Server-sent events: ``changed`` when devices' pushes commit (the page re-reads itself);
        a few streams per session (``services/pulse.py``: ``PER_SESSION``), outside the request slots."""
        await page_of(request, auth)
        events = pulse.stream(request.cookies.get(SESSION_COOKIE) or "")
        return ServerSentEvent(events, retry_duration=1000, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
