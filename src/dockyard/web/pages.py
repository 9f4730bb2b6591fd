"""The dashboard's two HTML pages, with the ``<base>`` they need: the dashboard answers at
``/`` and at every view's address (``/queues/NAME/jobs/ID``), mounted under any prefix, so
relative links must resolve against the app's root, not against the address opened."""

from __future__ import annotations

import html
import re
from importlib.resources import files
from typing import Any

#: The view addresses the dashboard answers with its page (relative to the app's root).
VIEW_PATH = re.compile(r"^queues/[^\\]*$")


def app_root(scope: dict[str, Any] | Any) -> str:
    """The app's root relative to the address asked for (``./``, ``../../``): right under
    any mount prefix, also behind a proxy that strips one without telling the app."""
    root: str = scope.get("root_path", "") or ""
    raw = scope.get("raw_path")
    # Count the raw path's slashes: a job id with an encoded slash (%2F) is one segment.
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope.get("path", "/")
    if root and path.startswith(root):
        path = path[len(root) :]
    return "./" + "../" * max(path.count("/") - 1, 0)


def is_view_path(path: str) -> bool:
    """Whether ``path`` (inside the app, with its leading slash) is one of the dashboard's
    addresses: ``/`` or ``/queues/...``."""
    return path == "/" or VIEW_PATH.match(path[1:]) is not None


def safe_next(target: str) -> str:
    """Where to go after signing in: a view address relative to the app's root, or ``""``
    (the overview). Anything else (another site, ``//host``, a backslash) becomes ``""``."""
    target = target.strip()
    if not VIEW_PATH.match(target.split("?", 1)[0]) or "//" in target or "\n" in target:
        return ""
    return target


def _static(name: str) -> str:
    return files("dockyard.web").joinpath("static").joinpath(name).read_text()


def _with_base(page: str, root: str) -> str:
    return page.replace("<head>", f'<head>\n<base href="{html.escape(root)}">', 1)


def dashboard_page(scope: dict[str, Any] | Any, *, read_only: bool) -> str:
    """index.html for this request: its ``<base>``, and whether changes are offered."""
    page = _with_base(_static("index.html"), app_root(scope))
    flag = "true" if read_only else "false"
    return page.replace('<html lang="en">', f'<html lang="en" data-read-only="{flag}">', 1)


def login_page(scope: dict[str, Any] | Any, *, next_path: str = "", error: str = "") -> str:
    """login.html: after signing in, the browser goes on to ``next_path`` (a view address)."""
    page = _with_base(_static("login.html"), app_root(scope))
    page = page.replace("<!--error-->", html.escape(error))
    target = html.escape(safe_next(next_path))
    return page.replace('name="next" value=""', f'name="next" value="{target}"')
