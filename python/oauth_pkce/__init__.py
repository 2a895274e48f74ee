"""Valid OAuth access tokens for Python programs, from the bundled ``oauth-pkce`` binary.

The tokens live in Doppler (or Vault) and are refreshed with the rotation safety of the
command-line tool; this module only runs it::

    from oauth_pkce import TokenSource, BearerAuth

    source = TokenSource("jobber")
    token = source.access_token()                  # refreshed first when due
    requests.get(url, auth=BearerAuth(source))     # or httpx: auth=BearerAuth(source)

Settings come from the environment exactly as for the command line (``DOPPLER_TOKEN``,
``OAUTH_PKCE_STORE``, ...). No secret is ever put on a command line, and nothing is printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from typing import Any, Generator, List, Mapping, Optional

__all__ = ["BearerAuth", "OAuthPkceError", "TokenSource", "binary"]

#: A token with less than this many seconds left is fetched again (``oauth-pkce`` itself
#: refreshes one that expires within its own buffer, 300 s by default).
MARGIN = 60
#: A token whose expiry is unknown is kept in memory this many seconds (as the Rust
#: ``TokenSource`` does), then asked for again.
UNKNOWN_EXPIRY_TTL = 60


class OAuthPkceError(RuntimeError):
    """``oauth-pkce`` failed. ``exit_code`` is its exit code (README, "Exit codes"): 1 means a
    new sign-in is needed (``oauth-pkce authorize --provider NAME``); ``message`` is what it
    said on stderr (which never holds a secret)."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(f"oauth-pkce exited {exit_code}: {message}")
        self.exit_code = exit_code
        self.message = message


def binary() -> str:
    """The ``oauth-pkce`` executable: the one installed with this package (next to this
    Python's scripts), else the first on ``PATH``."""
    name = "oauth-pkce.exe" if sys.platform == "win32" else "oauth-pkce"
    for scripts in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(scripts, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("oauth-pkce")
    if found is None:
        raise OAuthPkceError(127, "the oauth-pkce executable was not found: pip install oauth-pkce")
    return found


class TokenSource:
    """Access tokens for one provider, kept in memory until they are due."""

    def __init__(
        self,
        provider: str,
        project: Optional[str] = None,
        config: Optional[str] = None,
        *,
        executable: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.provider = provider
        self._args: List[str] = []
        if project:
            self._args += ["--project", project]
        if config:
            self._args += ["--config", config]
        self._executable = executable
        self._env = dict(env) if env is not None else None
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._expires_at: Optional[float] = None
        self._fetched = 0.0

    def access_token(self) -> str:
        """A valid access token: from memory while it has more than ``MARGIN`` seconds
        left, else from ``oauth-pkce token`` (which refreshes it first when due)."""
        with self._lock:
            if self._token is not None and self._fresh():
                return self._token
            return self._fetch([])

    def after_unauthorized(self, token: str) -> str:
        """The API refused ``token`` (HTTP 401): drop it and get one that works, refreshed
        only if the store still holds the refused one (``oauth-pkce token --after-401``)."""
        with self._lock:
            if self._token is not None and self._token != token:
                return self._token  # another thread already replaced it
            self._token = None
            # The refused token goes on stdin, never on the command line: only it counts as
            # refused, not what another process of this machine cached since.
            return self._fetch(["--after-401", "--refused-token-stdin"], stdin=token)

    def _fresh(self) -> bool:
        if self._expires_at is None:
            # Expiry unknown: asked again after a minute (a sign-in or revoke elsewhere).
            return time.monotonic() - self._fetched < UNKNOWN_EXPIRY_TTL
        return self._expires_at - time.time() > MARGIN

    def _fetch(self, extra: List[str], stdin: Optional[str] = None) -> str:
        argv = [self._executable or binary(), *self._args, "token", "--provider", self.provider]
        argv += ["--format", "json", *extra]
        done = subprocess.run(
            argv,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self._env,
            check=False,
        )
        if done.returncode != 0:
            lines = [l for l in done.stderr.splitlines() if l.strip()]
            raise OAuthPkceError(done.returncode, " ".join(lines[-2:]) or "no message")
        answer = json.loads(done.stdout)
        self._token = str(answer["access_token"])
        expires_at = answer.get("expires_at")
        self._expires_at = float(expires_at) if expires_at is not None else None
        self._fetched = time.monotonic()
        return self._token


try:  # httpx's Auth, when httpx is installed: its flow retries once after a 401.
    import httpx as _httpx

    _AuthBase: Any = _httpx.Auth
except ImportError:  # pragma: no cover - depends on what is installed
    _AuthBase = object


class BearerAuth(_AuthBase):  # type: ignore[misc, valid-type]
    """``Authorization: Bearer`` from a :class:`TokenSource`, for ``requests`` (``auth=``)
    and ``httpx`` (``auth=``). A 401 answer gets one retry with a token from
    :meth:`TokenSource.after_unauthorized`; a request whose body cannot be sent again (a
    stream) is not retried."""

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    # requests
    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.source.access_token()}"
        request.register_hook("response", self._retry_once)
        return request

    def _retry_once(self, response: Any, **kwargs: Any) -> Any:
        sent = response.request
        if response.status_code != 401 or getattr(sent, "_oauth_pkce_retried", False):
            return response
        body = sent.body
        if body is not None and not isinstance(body, (bytes, str)):
            return response  # a stream: already consumed
        refused = sent.headers.get("Authorization", "").removeprefix("Bearer ")
        token = self.source.after_unauthorized(refused)
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        again = sent.copy()
        again.headers["Authorization"] = f"Bearer {token}"
        again._oauth_pkce_retried = True
        retried = response.connection.send(again, **kwargs)
        retried.history.append(response)
        retried.request = again
        return retried

    # httpx
    requires_request_body = True

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        token = self.source.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.source.after_unauthorized(token)}"
            yield request
