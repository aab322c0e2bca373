"""Per-process JSONL logs: one loguru file sink per broker, executor or thread runner.

Each process that runs task work replaces every loguru sink with exactly one serialized
(JSON per line) file sink at

    <log_root>/<seg(module_target)>/worker_id=<seg(worker_id)>/pid=<pid>__started=<start>.jsonl

where `<start>` is the sink's creation time in the fixed zone UTC+08:00
(`YYYYMMDDTHHMMSS+0800`), the zone every record's time is shown in too, whatever the
host's zone — perago 0.6's layout, which operators' log shippers already match. Files
rotate by size (loguru renames the full file to `<name>.<YYYY-MM-DD_HH-MM-SS_ffffff>.jsonl`,
in host local time, adding `.2`, `.3`… on a clash), rotated files older than the retention
are deleted at rotation and close, and writes go through loguru's queue (`enqueue=True`),
so a slow disk never blocks a task thread.

Records never carry a configured secret: a patcher masks the LakeFS secret key, its Basic
token and the Conductor auth secret in the message, in `extra` and in any attached
exception (message, chain and notes), and tracebacks are rendered without local variable
values (`diagnose=False`).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from perago.path_segment import safe_segment
from perago.redaction import SecretRedactor, config_secrets

if TYPE_CHECKING:
    from loguru import Record

    from perago.config import RuntimeConfig

LOG_TIMEZONE = timezone(timedelta(hours=8), name="UTC+08:00")
STARTED_FORMAT = "%Y%m%dT%H%M%S%z"

ProcessRole = Literal["broker", "executor", "runner"]
STARTUP_MESSAGES: dict[ProcessRole, str] = {
    "broker": "process broker started",
    "executor": "process executor started",
    "runner": "thread runner started",
}


def log_file_path(
    log_root: Path, module_target: str, worker_id: str, *, pid: int, started: datetime
) -> Path:
    """Where the sink of process `pid`, created at `started`, writes (11.2 layout)."""
    stamp = started.astimezone(LOG_TIMEZONE).strftime(STARTED_FORMAT)
    return (
        Path(log_root)
        / safe_segment(module_target)
        / f"worker_id={safe_segment(worker_id)}"
        / f"pid={pid}__started={stamp}.jsonl"
    )


def configure_process_logging(
    config: RuntimeConfig, *, module_target: str, worker_id: str
) -> Path:
    """Install this process's JSONL sink from `config` (log root, size, retention, secrets
    to mask) and return the file path. Call once, early, in each broker/executor/runner."""
    return configure_jsonl_logging(
        log_root=config.log_root,
        module_target=module_target,
        worker_id=worker_id,
        max_bytes=config.log_file_max_size,
        retention=config.log_retention,
        secrets=config_secrets(config),
    )


def configure_jsonl_logging(
    *,
    log_root: Path,
    module_target: str,
    worker_id: str,
    max_bytes: int,
    retention: timedelta,
    secrets: Iterable[str] = (),
) -> Path:
    """Remove every loguru sink, then add the one JSONL file sink; returns its path.

    Every record of the process carries `extra.worker_id` (a record's own `bind` wins).
    """
    log_file = log_file_path(
        log_root, module_target, worker_id, pid=os.getpid(), started=datetime.now(LOG_TIMEZONE)
    )
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger.remove()
    logger.configure(patcher=_record_patcher(SecretRedactor(secrets)), extra={"worker_id": worker_id})
    logger.add(
        log_file,
        serialize=True,
        rotation=max_bytes,
        retention=retention,
        enqueue=True,
        diagnose=False,
        encoding="utf-8",
    )
    return log_file


def log_process_started(
    role: ProcessRole, *, worker_id: str, module_target: str, log_file: Path
) -> None:
    """The start-up record operators look for: `process broker started` and friends,
    attributed (file, function, line) to the caller."""
    logger.opt(depth=1).bind(worker_id=worker_id, module_target=module_target, log_file=str(log_file)).info(
        STARTUP_MESSAGES[role]
    )


def _record_patcher(redactor: SecretRedactor) -> Any:
    def patch(record: Record) -> None:
        record["time"] = record["time"].astimezone(LOG_TIMEZONE)
        if not redactor:
            return
        record["message"] = redactor.redact(record["message"])
        record["extra"] = redactor.redact_value(record["extra"])
        exception = record["exception"]
        if exception is not None and exception.value is not None:
            rendered = "".join(traceback.format_exception(exception.value))
            if redactor.contains_secret(rendered):
                masked = _masked_exception(exception.value, redactor)
                record["exception"] = exception._replace(value=masked)

    return patch


def _masked_exception(
    exc: BaseException, redactor: SecretRedactor, seen: set[int] | None = None
) -> BaseException:
    """A stand-in with the same class name and traceback whose message, cause/context
    chain and notes are masked. The original object is left untouched (the caller may
    still re-raise it)."""
    seen = set() if seen is None else seen
    seen.add(id(exc))
    original = type(exc)
    stand_in_type = type(
        original.__name__,
        (Exception,),
        {"__module__": original.__module__, "__qualname__": original.__qualname__},
    )
    stand_in = stand_in_type(redactor.redact(str(exc))).with_traceback(exc.__traceback__)
    linked = exc.__cause__ if exc.__cause__ is not None else exc.__context__
    if linked is not None and id(linked) not in seen:
        masked_link = _masked_exception(linked, redactor, seen)
        if exc.__cause__ is not None:
            stand_in.__cause__ = masked_link
        else:
            stand_in.__context__ = masked_link
    stand_in.__suppress_context__ = exc.__suppress_context__
    notes = getattr(exc, "__notes__", None)
    if notes:
        stand_in.__notes__ = [redactor.redact(str(note)) for note in notes]
    return stand_in
