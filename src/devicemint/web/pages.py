"""What every page shares: the templates, who is looking, rendering, and the routers' mounting.

Pages are HTML; a refusal on a page is a page that says what was wrong (the API's JSON error
handlers stay for the API). Read pages work without JavaScript; signing needs a wallet, so
sign-in and the actions a party signs use `static/wallet.js`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from devicemint.api.deps import SESSION_COOKIE, Context, Principal
from devicemint.auth.roles import Role
from devicemint.auth.siwe import session_address

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def viewer(request: Request, ctx: Context) -> Principal | None:
    """The person signed in by the session cookie, or None. A cookie that no longer checks out
    (expired, signed out elsewhere) shows the page as to anyone, rather than refusing it."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with ctx.transaction() as session:
        address = session_address(session, token, now=ctx.clock())
    if address is None:
        return None
    return Principal(address=address, roles=ctx.role_resolver.roles_of(address))


Viewer = Annotated[Principal | None, Depends(viewer)]


def render(
    request: Request, ctx: Context, who: Principal | None, template: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page, with what the layout needs: who is signed in, and whether this is the local chain
    (whose development wallet is then offered, clearly marked)."""
    return templates.TemplateResponse(
        request,
        template,
        {"viewer": who, "dev_chain": ctx.settings.is_local_chain, "chain_id": ctx.chain_id, **values},
        status_code=status,
    )


def refusal(
    request: Request, ctx: Context, who: Principal | None, status: int, title: str, detail: str
) -> HTMLResponse:
    """A page saying what was refused and why, with the status a client can act on."""
    return render(request, ctx, who, "error.html", status=status, title=title, detail=detail)


class PageRefused(Exception):
    """A page refused before its route ran (by a dependency); `response` is what the person sees."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def uploads(form: FormData, name: str) -> list[UploadFile]:
    """The files chosen in a file input; an input left empty sends a part without a file name."""
    return [v for v in form.getlist(name) if isinstance(v, UploadFile) and v.filename]


def sign_in_first(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)


def has_role(who: Principal | None, role: Role) -> bool:
    return who is not None and role in who.roles


def install(app: FastAPI) -> None:
    """Mount the static files and every page router on the API app."""
    from devicemint.web.auditor import router as auditor_router
    from devicemint.web.committee import router as committee_router
    from devicemint.web.explorer import router as explorer_router
    from devicemint.web.foundation import router as foundation_router
    from devicemint.web.manufacturer import router as manufacturer_router
    from devicemint.web.signin import router as signin_router

    async def page_refused(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        return exc.response

    app.add_exception_handler(PageRefused, page_refused)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(signin_router)
    app.include_router(manufacturer_router)
    app.include_router(explorer_router)
    app.include_router(foundation_router)
    app.include_router(auditor_router)
    app.include_router(committee_router)
