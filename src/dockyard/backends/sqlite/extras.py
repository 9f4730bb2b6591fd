"""Deduplication keys and BullMQ metrics of a queue in an SQLite file: the parts of addJob
and moveToFinished that only some jobs (or workers) use, kept apart from the hot path."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ..metrics import Metrics


class DedupAndMetrics:
    """Mixed into QueueStore; runs inside its transactions."""

    conn: sqlite3.Connection
    qid: int

    def emit(self, now: int, name: str, fields: dict[str, str] | None = None) -> None:
        raise NotImplementedError  # QueueStore's

    def job_state(self, job_id: str) -> str | None:
        raise NotImplementedError  # QueueStore's

    def delete(self, job_ids: Sequence[str]) -> None:
        raise NotImplementedError  # QueueStore's

    def deduplicate(
        self, dedup: tuple[str, int | None, bool, bool], job_id: str, now: int
    ) -> str | None:
        """The deduplication step of addJob: the kept job's id, or None to add this one."""
        dedup_id, ttl, extend, replace = dedup
        conn, qid = self.conn, self.qid
        row = conn.execute(
            "SELECT job_id, expires FROM dedup WHERE qid = ? AND id = ?", (qid, dedup_id)
        ).fetchone()
        if row is not None and row[1] is not None and row[1] <= now:
            row = None
        expires = None if ttl is None else now + ttl
        if row is not None:
            owner, owner_expires = row
            if replace and self.job_state(owner) == "delayed":
                self.delete([owner])
                self.emit(now, "removed", {"jobId": owner, "prev": "delayed"})
                keep = expires if (ttl is None or extend) else owner_expires
                conn.execute(
                    "UPDATE dedup SET job_id = ?, expires = ? WHERE qid = ? AND id = ?",
                    (job_id, keep, qid, dedup_id),
                )
                self.emit(now, "deduplicated", {"jobId": job_id, "deduplicationId": dedup_id,
                                                "deduplicatedJobId": owner})  # fmt: skip
                return None
            if ttl is not None and extend:
                conn.execute(
                    "UPDATE dedup SET expires = ? WHERE qid = ? AND id = ?",
                    (expires, qid, dedup_id),
                )
            self.emit(now, "deduplicated", {"jobId": owner, "deduplicationId": dedup_id,
                                            "deduplicatedJobId": job_id})  # fmt: skip
            return str(owner)
        conn.execute(
            "INSERT OR REPLACE INTO dedup (qid, id, job_id, expires) VALUES (?, ?, ?, ?)",
            (qid, dedup_id, job_id, expires),
        )
        return None

    def release_dedup_if_any(self, job_id: str) -> None:
        """On finish: a deduplication key without a ttl lasts while its job is unfinished."""
        if self._has_dedup:
            self.release_dedup([job_id], untimed_only=True)

    @property
    def _has_dedup(self) -> bool:
        row = self.conn.execute("SELECT 1 FROM dedup WHERE qid = ? LIMIT 1", (self.qid,))
        return row.fetchone() is not None

    def release_dedup(self, job_ids: Sequence[str], untimed_only: bool) -> None:
        """Drop deduplication keys that still point to these jobs."""
        extra = " AND expires IS NULL" if untimed_only else ""
        self.conn.executemany(
            "DELETE FROM dedup WHERE qid = ? AND job_id = ? AND id = (SELECT deid FROM jobs "
            f"WHERE qid = ? AND id = ?){extra}",
            [(self.qid, job_id, self.qid, job_id) for job_id in job_ids],
        )

    def load_metrics(self, kind: str) -> Metrics:
        row = self.conn.execute(
            "SELECT count, prev_ts, prev_count, data FROM metrics WHERE qid = ? AND kind = ?",
            (self.qid, kind),
        ).fetchone()
        if row is None:
            return Metrics()
        return Metrics(row[0], row[1], row[2], json.loads(row[3]))

    def record_metrics(self, kind: str, now: int, points: int) -> None:
        m = self.load_metrics(kind)
        m.record(now, points)
        self.conn.execute(
            "INSERT OR REPLACE INTO metrics (qid, kind, count, prev_ts, prev_count, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self.qid, kind, m.count, m.prev_ts, m.prev_count, json.dumps(m.data)),
        )

    def outcome_from_events(self, job_id: str) -> tuple[str, str] | None:
        for name, fields in self.conn.execute(
            "SELECT name, fields FROM events WHERE qid = ? AND name IN ('completed', 'failed') "
            "ORDER BY id DESC LIMIT 2000",
            (self.qid,),
        ):
            data = json.loads(fields)
            if data.get("jobId") != job_id:
                continue
            if name == "completed":
                return "completed", data.get("returnvalue", "null")
            return "failed", data.get("failedReason", "")
        return None
