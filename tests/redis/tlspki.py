"""A private certificate authority for the TLS tests, made with ``openssl`` in a temp folder,
and TLS-only redis-servers that use it (loopback, started and stopped by the tests)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from dockyard.devserver import RedisServer, free_port

_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl("req", "-x509", *_EC, "-keyout", str(key), "-out", str(cert), "-days", "2",
             "-subj", f"/CN=dockyard test {name}", cwd=folder)  # fmt: skip
    return cert, key


def _issue(folder: Path, name: str, ca: tuple[Path, Path], san: str | None) -> tuple[Path, Path]:
    """A certificate signed by ``ca`` (with ``san`` as subjectAltName when given)."""
    cert, key, csr = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    _openssl("req", *_EC, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}",
             cwd=folder)  # fmt: skip
    extra: list[str] = []
    if san is not None:
        ext = folder / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", str(ext)]
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", str(cert), "-days", "2", *extra, cwd=folder)  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class Pki:
    """Our CA, a server certificate for localhost/127.0.0.1, one for another host only, a
    client certificate of our CA and one of a stranger CA."""

    ca: Path
    server: tuple[Path, Path]
    elsewhere: tuple[Path, Path]
    client: tuple[Path, Path]
    stranger: tuple[Path, Path]


def make_pki(folder: Path) -> Pki:
    """Make every file of :class:`Pki` in ``folder``."""
    ca = _ca(folder, "ca")
    other_ca = _ca(folder, "other-ca")
    return Pki(
        ca=ca[0],
        server=_issue(folder, "server", ca, "DNS:localhost,IP:127.0.0.1"),
        elsewhere=_issue(folder, "elsewhere", ca, "DNS:db.internal.example"),
        client=_issue(folder, "client", ca, None),
        stranger=_issue(folder, "stranger", other_ca, None),
    )


class TlsServer:
    """A TLS-only redis-server (no plain port) with our CA; ``client_certs`` makes it
    require a client certificate (``--tls-auth-clients yes``)."""

    def __init__(
        self, pki: Pki, *, client_certs: bool = False, cert: tuple[Path, Path] | None = None
    ) -> None:
        self.tls_port = free_port()
        cert_file, key_file = cert or pki.server
        args = ["--port", "0", "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
                "--tls-ca-cert-file", str(pki.ca),
                "--tls-auth-clients", "yes" if client_certs else "no"]  # fmt: skip
        self.server = RedisServer(extra_args=args)
        self.pki = pki

    def url(self, host: str = "127.0.0.1", **options: str | Path) -> str:
        """``rediss://host:port/0`` with ``options`` as its query."""
        query = urlencode({k: str(v) for k, v in options.items()})
        return f"rediss://{host}:{self.tls_port}/0" + (f"?{query}" if query else "")

    def __enter__(self) -> TlsServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.cleanup()
