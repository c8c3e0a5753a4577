"""What every console page shares: the signed-in caller, the language, CSRF checks,
rendering a template, and the page shown for a refusal.

Pages are Jinja2 templates rendered on the server (``templates/``); words come from
the message catalogues (``sync_server/i18n``), never from the templates."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect

from ..errors import ProblemError
from ..i18n import LANGUAGES, Catalogue, catalogue, money
from ..services.console_sessions import ConsoleAuth, SignedIn, same_token
from ..services.listing import local_time

__all__ = [
    "LANG_COOKIE",
    "SESSION_COOKIE",
    "SIGNIN_CSRF_COOKIE",
    "CsrfRefused",
    "NotSignedIn",
    "Page",
    "html",
    "lang_of",
    "on_not_signed_in",
    "on_problem",
    "page_of",
    "session_cookie",
]

SESSION_COOKIE = "ps_session"
LANG_COOKIE = "ps_lang"
SIGNIN_CSRF_COOKIE = "ps_signin_csrf"
_HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_HO_CHI_MINH = ZoneInfo("Asia/Ho_Chi_Minh")


class NotSignedIn(Exception):
    """No session, or an expired one: off to the sign-in page."""


class CsrfRefused(ProblemError):
    status = 403
    slug = "csrf"
    title = "Forbidden"


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{int(value):,}".replace(",", ".")


def _when(value: Any, zone: ZoneInfo | None = None) -> str:
    """A time as people in the ward write it, in the ward's zone: ``10/06/2023 09:45``."""
    text = local_time(value, zone or _HO_CHI_MINH) or ""
    if len(text) == 16 and text[4] == "-":
        return f"{text[8:10]}/{text[5:7]}/{text[:4]} {text[11:]}"
    return text


_env.filters.update(money=money, number=_number, when=_when)


def lang_of(request: Request[Any, Any, Any]) -> str:
    lang = request.cookies.get(LANG_COOKIE, "vi")
    return lang if lang in LANGUAGES else "vi"


@dataclasses.dataclass(slots=True)
class Page:
    """What a handler knows about the request it renders for."""

    request: Request[Any, Any, Any]
    me: SignedIn | None
    t: Catalogue

    def url(self, path: str, **query: Any) -> str:
        pairs = {k: v for k, v in query.items() if v not in (None, "")}
        return f"/console{path}" + (f"?{urlencode(pairs)}" if pairs else "")

    def check_csrf(self, token: str | None) -> None:
        expected = self.me.csrf if self.me else self.request.cookies.get(SIGNIN_CSRF_COOKIE)
        if not same_token(token, expected):
            raise CsrfRefused("the form's CSRF token is missing or wrong; reload the page")


async def page_of(request: Request[Any, Any, Any], auth: ConsoleAuth, required: bool = True) -> Page:
    me = await auth.resolve(request.cookies.get(SESSION_COOKIE))
    if me is None and required:
        raise NotSignedIn()
    return Page(request, me, catalogue(lang_of(request)))


def html(page: Page, template: str, status_code: int = 200, cookies: list[Cookie] | None = None, **context: Any) -> Response[str]:
    body = _env.get_template(template).render(
        t=page.t,
        me=page.me.principal if page.me else None,
        csrf=page.me.csrf if page.me else None,
        path=page.request.url.path,
        url=page.url,
        today=dt.date.today(),
        **context,
    )
    headers = {
        "Cache-Control": "no-store",
        # our own scripts and styles only; photos come from our own blob route
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    return Response(body, status_code=status_code, media_type="text/html", headers=headers, cookies=cookies)


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int | None) -> Cookie:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"
    return Cookie(key=SESSION_COOKIE, value=value, path="/console", httponly=True, samesite="lax", secure=secure, max_age=max_age)


def on_not_signed_in(request: Request[Any, Any, Any], _: NotSignedIn) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(path="/console/signin?" + urlencode({"next": target}), status_code=303)


def on_problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[str]:
    """A refusal as a page in the reader's language (404 for another ward's record, 403, 429)."""
    t = catalogue(lang_of(request))
    key = {404: "error.not_found", 403: "error.forbidden"}.get(exc.status)
    message = t(key) if key else exc.detail
    if isinstance(exc, CsrfRefused):
        message = t("signin.csrf")
    body = _env.get_template("error.html").render(t=t, me=None, csrf=None, path=request.url.path, url=lambda p, **q: f"/console{p}", message=message, status=exc.status)
    return Response(body, status_code=exc.status, media_type="text/html", headers={**exc.headers, "Cache-Control": "no-store"})
