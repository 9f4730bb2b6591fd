"""Refusals that retrying cannot fix, turned into typed errors that say what to change.

A certificate the client does not trust (or a client certificate the server does not
want), a wrong password, a missing ACL permission: each is final, so the client raises at
once instead of retrying as if the server were down. Only an unreachable or restarting
server (refused/reset connections, timeouts, LOADING) is retried.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionError,
    BackendRefusedError,
    BackendTLSError,
    BackendUnavailableError,
)

if TYPE_CHECKING:
    from .address import RedisAddress

#: Set-up refusals that pass by themselves (a server loading its data, a busy script).
TRANSIENT_REPLIES = ("LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN")
#: Error replies that mean a Sentinel-followed server stopped being a writable primary (or
#: is not one yet), so the command was not run: the client finds the primary and resends.
FAILOVER_REPLIES = ("READONLY", "UNBLOCKED", "LOADING", "NOREPLICAS", "MASTERDOWN")
#: How an ACL refusal starts: a command's own ``NOPERM`` or the one of a command that a
#: script called (Redis 7.0 words it as an ``ERR``).
PERMISSION_REPLIES = ("NOPERM", "ERR The user executing the script can't")
#: Handshake failures of the protocol itself (not a network hiccup): TLS to a plain port.
_WRONG_PROTOCOL = ("WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE",
                   "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")  # fmt: skip


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def tls_refusal(exc: BaseException, address: RedisAddress) -> BackendTLSError | None:
    """The typed error for a TLS failure that will not heal (in ``exc`` or behind it), or
    None when it may pass (a connection cut during the handshake)."""
    for err in _chain(exc):
        if isinstance(err, ssl.SSLCertVerificationError):
            return BackendTLSError(_untrusted(err, address))
        if not isinstance(err, ssl.SSLError):
            continue
        reason = str(err.reason or "")
        where = f"Redis at {address}"
        if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED" or (
            "ALERT" in reason and "HANDSHAKE_FAILURE" in reason and not _has_client_cert(address)
        ):
            return BackendTLSError(
                f"{where} wants a client certificate (tls-auth-clients yes): add "
                "ssl_certfile=/path/client.pem&ssl_keyfile=/path/client.key to the URL"
            )
        if "ALERT" in reason:
            return BackendTLSError(
                f"{where} refused the TLS handshake ({reason}): "
                + (
                    "its CA does not trust our client certificate (ssl_certfile); use one "
                    "signed by the CA of the server's tls-ca-cert-file"
                    if _has_client_cert(address)
                    else "check the URL's TLS options against the server's tls-* settings"
                )
            )
        if reason in _WRONG_PROTOCOL:
            return BackendTLSError(
                f"{where} does not speak TLS on port {address.port} ({reason}): use redis:// "
                "for a plain port, or the server's tls-port"
            )
    return None


def _has_client_cert(address: RedisAddress) -> bool:
    return address.tls is not None and address.tls.certfile is not None


def _untrusted(err: ssl.SSLCertVerificationError, address: RedisAddress) -> str:
    detail = str(err.verify_message or err.reason or err)
    text = f"Redis at {address} showed a certificate that is not trusted ({detail}): "
    lowered = detail.lower()
    if "hostname" in lowered or "ip address mismatch" in lowered:
        return text + (
            f"it is not issued for {address.host!r}; connect by a name the certificate lists "
            "or, if you must, add ssl_check_hostname=false to the URL"
        )
    if "expired" in lowered or "not yet valid" in lowered:
        return text + "renew the server's certificate (or fix this machine's clock)"
    ca = address.tls.ca_certs if address.tls is not None else None
    if ca:
        return text + f"the CA in ssl_ca_certs={ca} did not sign it; give the CA that did"
    return text + (
        "for a private or self-signed CA add ssl_ca_certs=/path/ca.pem to the URL "
        "(the CA that signed the server's certificate)"
    )


def setup_refusal(
    reply: BaseException, command: Sequence[Any], address: RedisAddress
) -> BackendError | BackendUnavailableError:
    """The error for an error reply to one of the connection's set-up commands (AUTH,
    SELECT, CLIENT SETNAME, INFO): transient ones are BackendUnavailableError (retried)."""
    text = str(reply)
    where = f"Redis at {address}"
    if text.startswith(TRANSIENT_REPLIES):
        return BackendUnavailableError(f"{where} is not ready yet: {text}")
    if text.startswith("WRONGPASS"):
        return BackendAuthError(
            f"{where} refused the login of user {address.user!r}: wrong password, unknown "
            f"user or the user is disabled ({text}); fix the user and password in the URL "
            "(redis://USER:PASSWORD@host) or the server's ACL"
        )
    if text.startswith("NOAUTH"):
        return BackendAuthError(
            f"{where} needs a password ({text}); give it in the URL: redis://:PASSWORD@host "
            "or, for an ACL user, redis://USER:PASSWORD@host"
        )
    if text.startswith("ERR") and "AUTH" in text and "password" in text:
        return BackendAuthError(
            f"the URL gives a password but {where} has none set for user "
            f"{address.user!r} ({text}); drop it from the URL or set one on the server"
        )
    if text.startswith(PERMISSION_REPLIES):
        return permission_error(text, command, address)
    name = " ".join(str(_text(part)) for part in command[:2] if part != address.password)
    return BackendRefusedError(f"{where} refused the set-up command {name}: {text}")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_COMMAND_IN_REPLY = re.compile(r"permissions to run the '([^']+)' command")
_KEY_REFUSAL = re.compile(r"access (?:one|at least one) of the keys")
_SCRIPT_LINE = re.compile(r"@user_script:(\d+)")
_CALL_IN_LINE = re.compile(
    r"""(?:rcall|redis\.p?call)\(\s*["']([A-Za-z]+)["']\s*(?:,\s*([^,)]+))?"""
)


def permission_error(
    text: str,
    command: Sequence[Any],
    address: RedisAddress,
    *,
    script: tuple[str, bytes] | None = None,
    keys: Sequence[str] = (),
) -> BackendPermissionError:
    """A NOPERM reply (``text``) to ``command`` as a typed error naming what is missing:
    the command and the key(s); ``script`` is ``(name, source)`` when a script ran it."""
    user = address.user
    where = f"Redis user {user!r} at {address}"
    server = text.split(" script: ", 1)[0]
    named = _COMMAND_IN_REPLY.search(text)
    called, key_expr, line = _script_call(text, script)
    if named:  # the command itself (or EVALSHA) was refused
        cmd = named.group(1)
        what = f"run the {cmd.upper()} command" + (f" (for script {script[0]})" if script else "")
        grant = f"+{cmd.lower()}"
    elif called:  # a command a script called was refused
        what = f"run {called} (line {line} of script {script[0] if script else '?'})"
        grant = f"+{called.lower()}"
    elif script is not None:  # the script's declared keys were refused
        what = f"run script {script[0]}"
        grant = "+evalsha"
    else:
        cmd = _text(command[0]).upper() if command else "?"
        what = f"run {cmd}"
        grant = f"+{cmd.lower()}"
    if _KEY_REFUSAL.search(text):
        shown = list(keys) or _keys_of(command)
        target = f" on {key_expr}" if key_expr else ""
        pattern = _pattern(shown)
        return BackendPermissionError(
            f"{where} may not access the keys of {what.removeprefix('run ')}{target} "
            f"(the keys: {', '.join(shown) or '?'}): {server}. Grant a key pattern that "
            f"covers them, e.g. ACL SETUSER {user} ~{pattern}"
        )
    return BackendPermissionError(
        f"{where} may not {what}: {server}. Grant it, e.g. ACL SETUSER {user} {grant} "
        "(the README's \"Production Redis\" section lists each role's ACL)"
    )


def _script_call(text: str, script: tuple[str, bytes] | None) -> tuple[str | None, str, int]:
    """The command (and its first argument's expression) at the script line the reply names."""
    found = _SCRIPT_LINE.search(text)
    if script is None or found is None:
        return None, "", 0
    line = int(found.group(1))
    lines = script[1].decode("utf-8", "replace").splitlines()
    if not 0 < line <= len(lines):
        return None, "", line
    call = _CALL_IN_LINE.search(lines[line - 1])
    if call is None:
        return None, "", line
    return call.group(1).upper(), (call.group(2) or "").strip(), line


def _keys_of(command: Sequence[Any]) -> list[str]:
    """The key arguments of the plain commands dockyard sends outside scripts."""
    parts = [_text(p) for p in command]
    if not parts:
        return []
    name = parts[0].upper()
    if name in ("EVALSHA", "EVAL") and len(parts) > 2 and parts[2].isdigit():
        return parts[3 : 3 + int(parts[2])]
    if name == "MGET":
        return parts[1:]
    if name == "XREAD" and "STREAMS" in (p.upper() for p in parts):
        rest = parts[[p.upper() for p in parts].index("STREAMS") + 1 :]
        return rest[: len(rest) // 2]
    return parts[1:2]


def _pattern(keys: Sequence[str]) -> str:
    """A key pattern covering ``keys``: their shared first segment (``bull:*``)."""
    heads = {key.split(":", 1)[0] for key in keys}
    return f"{heads.pop()}:*" if len(heads) == 1 else "bull:*"
