"""The console's administration pages (admins only): wards, teams, users (console
password, disable and enable) and devices (revoke, re-issue a token, enrolment code
with its QR code), through the same services as ``/v1/admin``.

A re-issued token and an enrolment code are shown once, on the page that answers the
form (never in a redirect's address, which browsers keep in their history), and are
neither stored nor logged: the store keeps only their hashes."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

import segno
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect

from schemas import Device, EnrolmentRequest, Team, User, UserUpdate, Ward

from ..errors import Forbidden, NotFound, Refused, Unprocessable
from ..services.console_sessions import ConsoleAuth
from ..services.enrolment import EnrolmentService
from ..services.identity import Administration
from ..services.passwords import PasswordRefused
from .web import Page, html, page_of

__all__ = ["ConsoleAdmin"]

_KINDS: dict[str, type[Ward] | type[Team] | type[User] | type[Device]] = {"wards": Ward, "teams": Team, "users": User, "devices": Device}


async def _admin_page(request: Request[Any, Any, Any], auth: ConsoleAuth) -> Page:
    page = await page_of(request, auth)
    assert page.me is not None
    if not page.me.principal.is_admin:
        raise Forbidden("this needs the admin role")
    return page


def qr_svg(text: str, title: str) -> str:
    """``text`` as a QR code, inline SVG drawn here (no script, no CDN, no image request:
    the console's CSP allows none of those from elsewhere)."""
    return str(segno.make(text, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff", title=title, svgclass="qr"))


class ConsoleAdmin(Controller):
    path = "/console/admin"
    include_in_schema = False

    @get("/{kind:str}")
    async def listing(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        admin: NamedDependency[Administration],
        kind: FromPath[Literal["wards", "teams", "users", "devices"]],
        done: FromQuery[str | None] = None,
        refused: FromQuery[str | None] = None,
    ) -> Response[str]:
        page = await _admin_page(request, auth)
        rows = await admin.every(_KINDS[kind])  # type: ignore[type-var]
        wards = {w.id: w.name for w in await admin.every(Ward)}
        users = {u.id: u.name for u in await admin.every(User)} if kind == "devices" else {}
        teams = {t.id: t.name for t in await admin.every(Team)} if kind == "users" else {}
        return html(page, "admin.html", kind=kind, rows=rows, ward_names=wards, user_names=users, team_names=teams, done=done, refused=refused == "last_admin")

    @post("/password/{user_id:str}", status_code=303)
    async def set_password(
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], user_id: FromPath[str], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect:
        page = await _admin_page(request, auth)
        page.check_csrf(data.get("csrf"))
        try:
            await auth.set_password(user_id, data.get("password", ""))
        except PasswordRefused as exc:
            raise Unprocessable(str(exc)) from None
        return Redirect("/console/admin/users?" + urlencode({"done": page.t("admin.password_set", user=user_id)}), status_code=303)

    @post("/revoke/{device_id:str}", status_code=303)
    async def revoke(
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], admin: NamedDependency[Administration], device_id: FromPath[str], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect:
        page = await _admin_page(request, auth)
        page.check_csrf(data.get("csrf"))
        await admin.revoke_device(device_id)
        return Redirect("/console/admin/devices?" + urlencode({"done": page.t("admin.revoked", device=device_id)}), status_code=303)

    @post("/disable/{user_id:str}", status_code=303)
    async def disable(
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], admin: NamedDependency[Administration], user_id: FromPath[str], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect:
        return await _set_disabled(request, auth, admin, user_id, data, True)

    @post("/enable/{user_id:str}", status_code=303)
    async def enable(
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], admin: NamedDependency[Administration], user_id: FromPath[str], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect:
        return await _set_disabled(request, auth, admin, user_id, data, False)

    @post("/reissue/{device_id:str}", status_code=200)
    async def reissue(
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], admin: NamedDependency[Administration], device_id: FromPath[str], data: URLEncodedBody[dict[str, str]]
    ) -> Response[str]:
        page = await _admin_page(request, auth)
        page.check_csrf(data.get("csrf"))
        issued = await admin.reissue_token(device_id)  # the domain's NotFound: the console's 404 page
        return html(page, "admin_token.html", device_id=issued.device_id, user_id=issued.user_id, token=issued.token)

    @post("/enrolment/{device_id:str}", status_code=200)
    async def enrolment(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        admin: NamedDependency[Administration],
        enrolment: NamedDependency[EnrolmentService],
        device_id: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Response[str]:
        page = await _admin_page(request, auth)
        page.check_csrf(data.get("csrf"))
        if not any(d.device_id == device_id for d in await admin.every(Device)):
            raise NotFound(f"no device {device_id}")  # a new device is registered through the API or CLI, with its user
        made = await enrolment.create(device_id, EnrolmentRequest(), str(request.base_url))
        return html(
            page,
            "admin_enrolment.html",
            device_id=device_id,
            enrolment=made,
            zone=await admin.zone_of_device(device_id),
            qr=qr_svg(made.url, page.t("admin.enrolment_qr")),
        )


async def _set_disabled(
    request: Request[Any, Any, Any], auth: ConsoleAuth, admin: Administration, user_id: str, data: dict[str, str], disabled: bool
) -> Redirect:
    """Disable or enable a user: his devices and console sessions stop (or work again) from
    their next request. The last enabled admin stays: the page says why, as a notice."""
    page = await _admin_page(request, auth)
    page.check_csrf(data.get("csrf"))
    try:
        await admin.update_user(user_id, UserUpdate(disabled=disabled))
    except Refused:
        return Redirect("/console/admin/users?refused=last_admin", status_code=303)
    message = page.t("admin.disabled_done" if disabled else "admin.enabled_done", user=user_id)
    return Redirect("/console/admin/users?" + urlencode({"done": message}), status_code=303)
