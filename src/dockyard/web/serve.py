"""``dockyard serve``: the app under uvicorn, refusing to expose an API without a token."""

from __future__ import annotations

import ipaddress
import os
import sys

from ..backends import display_url, resolve_url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(
    *,
    url: str | None,
    host: str,
    port: int,
    token: str | None,
    prefix: str = "bull",
    queues: list[str] | None = None,
    allowed_hosts: list[str] | None = None,
    read_only: bool = False,
) -> int:
    """Serve until interrupted; the exit code (2: refused to start)."""
    import uvicorn

    from ..errors import InvalidOptionError
    from .app import create_app
    from .guard import LOOPBACK_HOSTS, check_token

    try:
        token = check_token(token or os.environ.get("DOCKYARD_API_TOKEN") or None)
    except InvalidOptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not _loopback(host) and token is None:
        print(
            f"error: refusing to listen on {host} without a token: anyone who can reach it "
            "could run and delete jobs. Set DOCKYARD_API_TOKEN (or --token), or use "
            "--host 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    url = resolve_url(url)  # the one default of the library and every command (#20)
    mode = " (read-only)" if read_only else ""
    print(f"dockyard serving {display_url(url)} on http://{host}:{port}/{mode}", file=sys.stderr)
    hosts = None
    if allowed_hosts or token is None:
        # Requests must name this server: its address or a loopback name, with its port,
        # or one of --allowed-host (a DNS name rebound to this address does not).
        bound = f"[{host}]" if ":" in host else host
        hosts = [*(allowed_hosts or ()), *(f"{h}:{port}" for h in (bound, *LOOPBACK_HOSTS))]
    try:
        app = create_app(url=url, prefix=prefix, token=token, queues=queues, allowed_hosts=hosts,
                         read_only=read_only)  # fmt: skip
    except InvalidOptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Event streams never end by themselves: without a bound, Ctrl-C would wait for every
    # open dashboard to be closed.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    return 0
