"""The console's administration pages (admins only): wards, teams, users (console
password) and devices (revoke), through the same store calls as ``/v1/admin``."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect

from schemas import Device, Team, User, Ward

from ..errors import Forbidden, Unprocessable
from ..passwords import PasswordRefused
from ..stores import Store
from .auth import ConsoleAuth
from .web import Page, html, page_of

__all__ = ["ConsoleAdmin"]

_KINDS: dict[str, type[Ward] | type[Team] | type[User] | type[Device]] = {"wards": Ward, "teams": Team, "users": User, "devices": Device}


async def _admin_page(request: Request[Any, Any, Any], auth: ConsoleAuth) -> Page:
    page = await page_of(request, auth)
    assert page.me is not None
    if not page.me.principal.is_admin:
        raise Forbidden("this needs the admin role")
    return page


class ConsoleAdmin(Controller):
    path = "/console/admin"
    include_in_schema = False

    @get("/{kind:str}")
    async def listing(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[ConsoleAuth],
        store: NamedDependency[Store],
        kind: FromPath[Literal["wards", "teams", "users", "devices"]],
        done: FromQuery[str | None] = None,
    ) -> Response[str]:
        page = await _admin_page(request, auth)
        rows = await store.entities(_KINDS[kind])
        wards = {w.id: w.name for w in await store.entities(Ward)}  # type: ignore[union-attr]
        users = {u.id: u.name for u in await store.entities(User)} if kind == "devices" else {}  # type: ignore[union-attr]
        teams = {t.id: t.name for t in await store.entities(Team)} if kind == "users" else {}  # type: ignore[union-attr]
        return html(page, "admin.html", kind=kind, rows=rows, ward_names=wards, user_names=users, team_names=teams, done=done)

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
        self, request: Request[Any, Any, Any], auth: NamedDependency[ConsoleAuth], store: NamedDependency[Store], device_id: FromPath[str], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect:
        page = await _admin_page(request, auth)
        page.check_csrf(data.get("csrf"))
        await store.revoke_device(device_id)
        return Redirect("/console/admin/devices?" + urlencode({"done": page.t("admin.revoked", device=device_id)}), status_code=303)
