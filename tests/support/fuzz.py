"""Shared pieces of the fuzz tests: real jobs to aim at, the output-offset oracle, worker checks."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.http import get
from tests.support.servers import GatewayServer

#: The largest offset the job output endpoint takes (``offset`` and ``Last-Event-ID``).
MAX_OFFSET = 2**53 - 1
ENDED = {"succeeded", "failed", "timed_out", "cancelled"}

#: Offsets at and past every boundary, as a client could send them.
OFFSET_EXTREMES = [
    "0",
    "1",
    "00000000000000000000007",
    str(MAX_OFFSET),
    str(MAX_OFFSET + 1),
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    str(10**30),
    "9" * 4301,  # past Python's int() digit limit
    "-1",
    str(-(2**63)),
    "-" + "9" * 40,
    "abc",
    "1.5",
    "1e3",
    "0x10",
    "NaN",
    "Infinity",
    "+5",
    " 5 ",
    "5_0",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() takes it, it is not an ASCII offset
    "\uff11\uff12",  # FULLWIDTH DIGITS 12
    "5\x00",
    "%35",
    "",
]


def offset_verdict(raw: str | None) -> str:
    """``"valid"`` (must be taken), ``"invalid"`` (must be a 400) or ``"either"``.

    Valid: absent or a decimal ASCII integer 0..2^53-1.  Invalid: whatever ``int()`` refuses,
    and any integer outside 0..2^53-1.  Either: forms ``int()`` takes that a stricter parser may
    refuse (sign, blanks, underscores, non-ASCII digits, an empty value).
    """
    if raw is None:
        return "valid"
    if raw == "" or raw.strip(" \t") == "":
        return "either"
    if re.fullmatch(r"[0-9]+", raw):
        if len(raw.lstrip("0")) > 16 or int(raw) > MAX_OFFSET:
            return "invalid"
        return "valid" if len(raw) <= 16 else "either"  # leading zeros: a length limit may refuse them
    try:
        value = int(raw)
    except ValueError:
        return "invalid"
    return "either" if 0 <= value <= MAX_OFFSET else "invalid"


def offset_kind(raw: str | None) -> str:
    """A value's class, for grouping failures: absent, in range, 2^53 or more, 2^63 or more..."""
    if raw is None:
        return "absent"
    if raw.strip(" \t") == "":
        return "empty"
    verdict = offset_verdict(raw)
    if verdict == "valid":
        return "in range"
    try:
        value = int(raw)
    except ValueError:
        return "too long" if re.fullmatch(r"[0-9]+", raw) else "not an integer"
    if value >= 2**63:
        return ">= 2^63"
    if value > MAX_OFFSET:
        return ">= 2^53"
    return "negative" if value < 0 else "a lenient form"


def expected_output_status(last_event_id: str | None, offset: str | None) -> set[int]:
    """The statuses allowed for a visible job's output with this header and query offset.

    The header, when present and not empty, is the offset used; the other one may be checked
    too (a 400) or ignored.
    """
    header_used = last_event_id is not None and last_event_id != ""
    used, other = (last_event_id, offset) if header_used else (offset, last_event_id)
    verdicts = {offset_verdict(used), offset_verdict(other if other != "" else None)}
    if offset_verdict(used) == "invalid":
        return {400}
    if verdicts == {"valid"}:
        return {200}
    return {200, 400}


def stream_refused(status: int, retry_after: str | None) -> bool:
    """A stream turned away by the stream caps (429: the principal's, 503: the worker's) with
    ``Retry-After``: a documented answer wherever a 200 is (one principal's fuzzed streams
    can overlap more than its share)."""
    return status in (429, 503) and bool(retry_after)


def sse_complete(text: str) -> bool:
    """An ended job's event stream was sent whole: it closes with the ``end`` event."""
    return "\nevent: end\n" in f"\n{text}" and text.endswith("\n\n")


def seed_jobs(server: GatewayServer, headers: dict[str, str], apis: list[str]) -> list[str]:
    """Run one job per API (``mode=job``) and wait until all have ended; returns their ids."""
    ids = []
    for api in apis:
        reply = get(server.api(urlencode({"api": api, "mode": "job"})), headers=headers, timeout=60)
        assert reply.status == 202, reply.body[:500]
        ids.append(reply.json["job"]["job_id"])
    deadline = time.monotonic() + 240
    for job_id in ids:
        while True:
            state = get(f"{server.url}/admin/rest_api/jobs/{job_id}", headers=headers).json["state"]
            if state in ENDED:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"seed job {job_id} did not end: {state}")
            time.sleep(0.3)
    return ids


def worker_pids(server: GatewayServer) -> set[int]:
    """The gunicorn master's children (its workers)."""
    master = server.proc.pid
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        return {int(pid) for pid in children.read_text().split()}
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


# What gunicorn's log shows when a worker died, was killed or failed a request outside the app.
WORKER_TROUBLE = re.compile(
    r"WORKER TIMEOUT|Worker \(pid:\d+\) (?:exited|was sent)|Error handling request|Traceback|Booting worker"
)


def worker_trouble(log_tail: str) -> list[str]:
    """What the gunicorn log shows of workers dying, restarting, or failing a request outside the
    app (e.g. an event stream that raised after its headers), one line per kind with a count.

    The gateway's own "unhandled error" events are left out: those requests answered 500.
    """
    found: Counter[str] = Counter()
    for line in log_tail.splitlines():
        if not WORKER_TROUBLE.search(line) or '"unhandled error"' in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            found[line[:200]] += 1
            continue
        last = (event.get("exception") or "").strip().splitlines()[-1:] or [""]
        found[f"{event.get('event', '')}: {last[0][:160]}"] += 1
    return [f"{line} ({count}x)" for line, count in found.items()]
