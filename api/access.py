"""Who is calling, as FastAPI dependencies, and the login routes that start sessions.

`reader` lets in any user (or anyone, with `open_reads`); `trader` only traders. A bearer API
key or a session cookie identifies the caller; a cookie-borne request that changes something
must also carry the session's CSRF token. Refusals are 401 (who are you?) or 403 (not
allowed), with a reason, and name no secret.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from api.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    LoginLimiter,
    Role,
    Sessions,
    User,
    Users,
    same_token,
)

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
UNAUTHENTICATED: Final[dict[int | str, dict[str, Any]]] = {
    401: {"description": "No valid API key or session."},
}
FORBIDDEN: Final[dict[int | str, dict[str, Any]]] = {
    **UNAUTHENTICATED,
    403: {"description": "A viewer, or a session's change without its CSRF token."},
}

_bearer = HTTPBearer(auto_error=False, description="An API key (`ticklane api-users add`).")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The session of `POST /api/v1/login`."
)


@dataclass
class Access:
    """The users, their sessions, the login limiter, and whether reads are open."""

    users: Users
    sessions: Sessions
    limiter: LoginLimiter
    open_reads: bool = False
    secure_cookies: bool = False
    session_s: float = 12 * 3600

    def identify(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None,
        session_token: str | None,
    ) -> User | None:
        """The caller, or None when they sent nothing; 401/403 for what they sent wrong."""
        if credentials is not None:
            user = self.users.by_key(credentials.credentials)
            if user is None:
                raise _unauthenticated("that API key is not known")
            request.state.user = user.name
            return user
        if session_token:
            session = self.sessions.get(session_token)
            if session is None:
                raise _unauthenticated("the session has ended; log in again")
            if request.method not in SAFE_METHODS and not same_token(
                request.headers.get(CSRF_HEADER, ""), session.csrf
            ):
                request.state.user = session.user.name
                raise HTTPException(403, f"a change from a session needs its {CSRF_HEADER}")
            request.state.user = session.user.name
            return session.user
        return None


def _unauthenticated(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


def dependencies(access: Access) -> tuple[Any, Any]:
    """The `reader` and `trader` dependencies over `access`."""

    def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        session_token: Annotated[str | None, Depends(_cookie)],
    ) -> User | None:
        return access.identify(request, credentials, session_token)

    def reader(user: Annotated[User | None, Depends(caller)]) -> User | None:
        if user is None and not access.open_reads:
            raise _unauthenticated("log in, or send Authorization: Bearer <API key>")
        return user

    def trader(user: Annotated[User | None, Depends(caller)]) -> User:
        if user is None:
            raise _unauthenticated("controls need a trader: send Authorization: Bearer <API key>")
        if user.role is not Role.TRADER:
            raise HTTPException(403, f"{user.name} is a {user.role.value}; controls need a trader")
        return user

    return reader, trader


class Login(BaseModel):
    """A person's name and password."""

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class LoggedIn(BaseModel):
    """Who is logged in, and the token their changes must carry in `X-CSRF-Token`."""

    user: str
    role: str
    csrf_token: str


class Me(BaseModel):
    """Who the caller is."""

    user: str
    role: str


def login_router(access: Access, reader: Any) -> APIRouter:
    """`POST /login`, `POST /logout`, `GET /me`."""
    router = APIRouter(prefix="/api/v1", tags=["access"])

    @router.post(
        "/login",
        responses={
            401: {"description": "Wrong name or password."},
            429: {"description": "Too many failed logins; see Retry-After."},
        },
    )
    def login(body: Login, request: Request, response: Response) -> LoggedIn:
        """Start a session: an HttpOnly cookie, and the CSRF token for changes."""
        request.state.user = body.username
        address = request.client.host if request.client else ""
        wait = access.limiter.retry_after(body.username, address)
        if wait > 0:
            raise HTTPException(
                429,
                f"too many failed logins; try again in {wait:.0f} s",
                headers={"Retry-After": str(max(int(wait), 1))},
            )
        user = access.users.check_password(body.username, body.password)
        if user is None:
            access.limiter.failed(body.username, address)
            raise HTTPException(401, "wrong name or password")
        access.limiter.succeeded(body.username, address)
        token, session = access.sessions.start(user)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(access.session_s),
            httponly=True,
            samesite="strict",
            secure=access.secure_cookies,
            path="/",
        )
        return LoggedIn(user=user.name, role=user.role.value, csrf_token=session.csrf)

    @router.post("/logout", status_code=204, responses=UNAUTHENTICATED)
    def logout(request: Request, response: Response) -> None:
        """End the caller's session."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            access.sessions.end(token)
        response.delete_cookie(SESSION_COOKIE, path="/")

    @router.get("/me", responses=UNAUTHENTICATED)
    def me(user: Annotated[User | None, Depends(reader)]) -> Me:
        """Who the caller is (`anonymous` with open reads and no login)."""
        if user is None:
            return Me(user="anonymous", role=Role.VIEWER.value)
        return Me(user=user.name, role=user.role.value)

    return router
