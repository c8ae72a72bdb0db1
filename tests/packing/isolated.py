"""Unpack hostile bytes in a child process whose memory and time are bounded.

A regression in the unpacker's defences (a C-stack overflow, a memory bomb,
quadratic time) must fail a test, not take the test run or the machine down
with it. :func:`unpack_isolated` runs ``hlg.unpack`` on each case in one child
process under ``resource.setrlimit(RLIMIT_AS)`` and a timeout, and reports the
outcome of each case by name.
"""

from __future__ import annotations

import json
import pickle
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Address space for the child: enough for Python and hlg, far below what a bomb asks.
MEMORY = 1536 << 20
TIMEOUT = 120.0

_CHILD = r"""
import json, pickle, sys
import hlg
import hlg.testing  # registers the test-only layer types that some cases use

with open(sys.argv[1], "rb") as f:
    cases = pickle.load(f)
for name, data, kwargs in cases:
    print(json.dumps({"start": name}), flush=True)
    try:
        hlg.unpack(data, **kwargs)
        outcome, message = "ok", ""
    except hlg.HlgError as err:
        outcome, message = type(err).__name__, str(err)
    except BaseException as err:  # a bare builtin: the test fails on it
        outcome, message = "bare " + type(err).__name__, str(err)[:500]
    print(json.dumps({"name": name, "outcome": outcome, "message": message[:2000]}), flush=True)
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def unpack_isolated(
    cases: list[tuple[str, bytes, dict[str, Any]]], *, timeout: float = TIMEOUT
) -> dict[str, tuple[str, str]]:
    """Unpack every ``(name, data, unpack kwargs)`` case in a bounded child process.

    Returns each case's outcome (``"ok"`` or the hlg error's class name) and
    message. Raises AssertionError if the child crashes or runs out of time,
    naming the case it was unpacking.
    """
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
        pickle.dump(cases, f)
    path = Path(f.name)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limit_memory,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        raise AssertionError(
            f"unpacking case {_last_started(out)!r} took more than {timeout} s"
        ) from None
    finally:
        path.unlink()
    results = {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "outcome" in record:
            results[record["name"]] = (record["outcome"], record["message"])
    if proc.returncode != 0:
        raise AssertionError(
            f"the child process died (exit {proc.returncode}) unpacking case "
            f"{_last_started(proc.stdout)!r}: {proc.stderr[-2000:]}"
        )
    return results


def _last_started(stdout: str) -> str | None:
    started = [json.loads(line).get("start") for line in stdout.splitlines() if line]
    started = [s for s in started if s]
    return started[-1] if started else None


def assert_refused(
    results: dict[str, tuple[str, str]], name: str, errors: tuple[str, ...], match: str = ""
) -> None:
    """Assert case ``name`` raised one of ``errors`` (names), with ``match`` in its message."""
    outcome, message = results[name]
    assert outcome in errors, f"case {name!r}: {outcome}: {message}"
    assert match in message, f"case {name!r}: {message!r} lacks {match!r}"
    assert "ran out of memory" not in message, f"case {name!r} was refused only by RLIMIT_AS"
