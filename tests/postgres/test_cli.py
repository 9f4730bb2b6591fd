"""The `dockyard` command on a PostgreSQL store: its store line hides the password, jobs
added from the command are seen by the library, a refused login is one line of error."""

from __future__ import annotations

from dockyard import Queue

from ..cli.test_store_and_messages import dockyard, error_lines
from ..pgserver import PASSWORD, PostgresServer


async def test_add_and_stats_on_postgres_hide_the_password(postgres_url: str) -> None:
    added = dockyard("add", "emails", "send", "--data", '{"to": "a@b.c"}', "--url", postgres_url)
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stderr and "postgres:***@" in added.stderr
    stats = dockyard("stats", "--url", postgres_url)
    assert stats.returncode == 0, stats.stderr
    assert "emails" in stats.stdout
    async with Queue("emails", url=postgres_url) as queue:
        jobs = await queue.get_jobs("waiting")
        assert [job.data for job in jobs] == [{"to": "a@b.c"}]


def test_a_refused_login_is_one_line_of_error(postgres_server: PostgresServer) -> None:
    url = postgres_server.url(schema="cli_auth", password="wrong")
    done = dockyard("add", "q", "x", "--url", url)
    assert done.returncode != 0
    errors = error_lines(done.stderr)
    assert len(errors) == 1 and "password" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
