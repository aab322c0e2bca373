"""Per-process JSONL logs: one lean loguru sink per broker, executor or thread runner.

Each process that runs task work replaces every loguru sink with exactly one JSONL file
sink at

    <log_root>/<seg(module_target)>/worker_id=<seg(worker_id)>/pid=<pid>__started=<start>.jsonl

where `<start>` is the sink's creation time in the fixed zone UTC+08:00
(`YYYYMMDDTHHMMSS+0800`), the zone every record's time is shown in too, whatever the
host's zone — perago 0.6's layout, which operators' log shippers already match. Each line
is loguru's serialized record (`{"text": ..., "record": {...}}`, authoring.md §11.3).
Files rotate by size (the full file is renamed to `<name>.<YYYY-MM-DD_HH-MM-SS_ffffff>.jsonl`,
its creation time in host local time, adding `.2`, `.3`… on a clash), and this sink's
rotated files older than the retention are deleted at rotation and close.

Why not loguru's own file sink with `serialize=True, enqueue=True` (perago 0.6's choice):
on the (loaded, 2-core) build machine it cost about 0.3 ms of CPU per record — pickling
every record through a multiprocessing queue to a writer thread, `json.dumps(default=str)`
over datetime objects, and a seek/tell per write for the size check. The queue buys
nothing here: every process writes its own file (the pid is in the name), so no two
processes share a file, and threads of one process are serialized by the loguru handler's
lock, which every `write` below runs under. `JsonlFileSink` serializes the record dict
with pydantic-core's encoder and appends it with one `write(2)` on an `O_APPEND` descriptor,
counting bytes instead of asking the file for its size: about 0.1 ms per record on the
same machine, most of it loguru building and formatting the record. Records reach the
kernel as they are logged (no user-space buffer to lose on SIGKILL).

The one record every task writes (`task attempt finished`) skips loguru altogether:
`log_task_record` builds the same serialized line (same keys, text layout, caller
attribution, `extra` with the process's `worker_id`, secrets masked) and hands it to the
installed sink. What does not change from one record to the next (caller, level, message,
thread; the date to the second) is serialized once, so a record costs about 10 µs
instead of loguru's 100. Without a perago sink installed it is a plain loguru call.

The sink's level is INFO: a DEBUG record (such as the per-task `task attempt started`) is
dropped by loguru's level check before any record is built, and `debug_records_wanted`
lets a hot path skip even the call.

Records never carry a configured secret: a patcher masks the LakeFS secret key, its Basic
token and the Conductor auth secret in the message, in `extra` and in any attached
exception (message, chain and notes), and tracebacks are rendered without local variable
values (`diagnose=False`).
"""

from __future__ import annotations

import glob
import os
import sys
import threading
import time
import traceback
from multiprocessing import current_process
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger
from pydantic_core import to_json

from perago.path_segment import safe_segment
from perago.redaction import SecretRedactor, config_secrets

if TYPE_CHECKING:
    from loguru import Record

    from perago.config import RuntimeConfig

LOG_TIMEZONE = timezone(timedelta(hours=8), name="UTC+08:00")
_ZONE_OFFSET = datetime(2000, 1, 1, tzinfo=LOG_TIMEZONE).isoformat()[-6:].encode()  # b"+08:00", as str(datetime) ends
STARTED_FORMAT = "%Y%m%dT%H%M%S%z"
ROTATED_STAMP_FORMAT = "%Y-%m-%d_%H-%M-%S_%f"
SINK_LEVEL = "INFO"

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
    redactor = SecretRedactor(secrets)
    logger.configure(patcher=_record_patcher(redactor), extra={"worker_id": worker_id})
    sink = JsonlFileSink(log_file, max_bytes=max_bytes, retention=retention)
    logger.add(sink, level=SINK_LEVEL, colorize=False, diagnose=False)
    global _direct
    _direct = _DirectRecords(sink, worker_id, redactor)
    return log_file


def log_task_record(level: Literal["INFO", "WARNING"], message: str, fields: dict[str, Any]) -> None:
    """Log `message` with `fields` in `extra`, attributed to the caller — what
    `logger.log(level, message, **fields)` would write, without loguru's record building."""
    direct = _direct
    if direct is None or not direct.installed():
        logger.opt(depth=1).log(level, message, **fields)
        return
    direct.write(level, message, fields, sys._getframe(1))


def debug_records_wanted() -> bool:
    """Whether any loguru sink takes DEBUG records — the level check `logger.debug` starts
    with, done before the call so that a per-task DEBUG record costs nothing when no sink
    would take it (perago's own sink is at INFO). If loguru's internals ever change shape,
    the answer is True and the call is made as before."""
    core = getattr(logger, "_core", None)
    return getattr(core, "min_level", 0) <= _DEBUG_NO


_DEBUG_NO = logger.level("DEBUG").no


class _DirectRecords:
    """Serialized records written straight to the process's `JsonlFileSink`.

    All of a line but the moment, the elapsed time and `extra` depends only on the
    caller's line, the level, the message and the thread, so each such shape is
    serialized once; a record then joins a few byte strings around `to_json(extra)`.
    """

    def __init__(self, sink: JsonlFileSink, worker_id: str, redactor: SecretRedactor) -> None:
        self.sink = sink
        self.worker_id = worker_id
        self.redactor = redactor
        self.levels = {
            name: {"icon": level.icon, "name": level.name, "no": level.no}
            for name in ("INFO", "WARNING")
            for level in [logger.level(name)]
        }
        self.process = {"id": os.getpid(), "name": current_process().name}
        self.places: dict[Any, _CallerPlace] = {}
        self.shapes: dict[tuple[Any, ...], _RecordShape] = {}
        self.clock = _RecordClock(since=_LOGGING_IMPORTED_US)

    def installed(self) -> bool:
        """The sink is still open: loguru stops (closes) it when its handler is removed."""
        return self.sink.is_open

    def write(self, level_name: str, message: str, fields: dict[str, Any], caller: Any) -> None:
        micros = time.time_ns() // 1000  # loguru's clock: datetime.now(), to the microsecond
        extra = {"worker_id": self.worker_id, **fields}
        if self.redactor:
            message = self.redactor.redact(message)
            extra = self.redactor.redact_value(extra)
        thread = threading.current_thread()
        # A code object's hash is computed afresh on every call: key on its id (the shape
        # keeps the code object alive, so the id cannot be reused while the entry exists).
        # The caller's instruction offset stands for its line, which takes a scan of the
        # code's line table to compute.
        key = (id(caller.f_code), caller.f_lasti, level_name, message, thread.ident, thread.name)
        shape = self.shapes.get(key)
        if shape is None:
            shape = self._shape(key, caller)
        self.sink.write_line(self.clock.fill(shape.template, micros, to_json(extra, fallback=str)))

    def _shape(self, key: tuple[Any, ...], caller: Any) -> _RecordShape:
        _, _, level_name, message, thread_id, thread_name = key
        code = caller.f_code
        line = caller.f_lineno
        place = self.places.get(code)
        if place is None:
            place = self.places[code] = _CallerPlace.of(code, caller.f_globals.get("__name__"))
        text_rest = f" | {level_name:<8} | {place.name}:{place.function}:{line} - {message}\n"
        fixed = {
            "file": place.file,
            "function": place.function,
            "level": self.levels[level_name],
            "line": line,
            "message": message,
            "module": place.module,
            "name": place.name,
            "process": self.process,
            "thread": {"id": thread_id, "name": thread_name},
        }
        shape = _RecordShape(code, _record_template(text_rest, fixed))
        if len(self.shapes) >= _MAX_RECORD_SHAPES:
            self.shapes.clear()  # messages that vary per call: keep the cache bounded
        self.shapes[key] = shape
        return shape


_MAX_RECORD_SHAPES = 1024


@dataclass(frozen=True, slots=True)
class _RecordShape:
    """One kind of record: its line as a bytes %-template (see `_record_template`) and the
    caller's code object."""

    code: Any
    template: bytes


def _record_template(text_rest: str, fixed: dict[str, Any]) -> bytes:
    """loguru's serialized line with the constant parts in place and `%b` holes for the
    rest, filled by `_RecordClock.fill`: the text's moment, `elapsed`, `extra` and `time`."""
    text_rest_json = to_json(text_rest)[1:-1].replace(b"%", b"%%")
    fixed_json = to_json(fixed)[1:-1].replace(b"%", b"%%")
    return (
        b'{"text":"%b.%b' + text_rest_json + b'","record":{"elapsed":{"repr":"%b%b","seconds":%b},'
        b'"exception":null,"extra":%b,' + fixed_json + b',"time":{"repr":"%b%b' + _ZONE_OFFSET + b'","timestamp":%b}}}\n'
    )


class _RecordClock:
    """loguru's time fields for a moment in microseconds since the epoch: what the
    `datetime` (in `LOG_TIMEZONE`) and the `timedelta` since `since` of that moment would
    show, without building either per record — the parts down to the second are
    formatted once per second. Each cache is one (second, text) tuple, replaced whole, so
    threads logging at once never pair a second with another second's text."""

    __slots__ = ("_elapsed", "_moment", "since")

    def __init__(self, since: int) -> None:
        self.since = since
        self._moment: tuple[int, bytes] = (-1, b"")
        self._elapsed: tuple[int, bytes] = (-1, b"")

    def fill(self, template: bytes, micros: int, extra: bytes) -> bytes:
        """A `_record_template` filled for the moment `micros` and the serialized `extra`."""
        second, micro = divmod(micros, 1_000_000)
        cached = self._moment
        if cached[0] != second:
            cached = self._moment = (second, str(datetime.fromtimestamp(second, LOG_TIMEZONE))[:19].encode())
        second_text = cached[1]
        elapsed = micros - self.since
        if elapsed < 0:  # the clock went back
            elapsed_text, elapsed_micro = str(timedelta(microseconds=elapsed)).encode(), b""
        else:
            whole, remainder = divmod(elapsed, 1_000_000)
            cached = self._elapsed
            if cached[0] != whole:
                cached = self._elapsed = (whole, str(timedelta(seconds=whole)).encode())
            elapsed_text = cached[1]
            elapsed_micro = b".%06d" % remainder if remainder else b""  # str(timedelta) omits zero micros
        return template % (
            second_text,
            _MILLIS[micro // 1000],
            elapsed_text,
            elapsed_micro,
            to_json(elapsed / 1_000_000),
            extra,
            second_text,
            b".%06d" % micro if micro else b"",  # as str(datetime) omits zero micros
            to_json(micros / 1_000_000),
        )


_MILLIS = [b"%03d" % millis for millis in range(1000)]


@dataclass(frozen=True, slots=True)
class _CallerPlace:
    """Where a record comes from, as loguru names it; one per calling code object."""

    file: dict[str, str]
    function: str
    module: str
    name: str | None

    @classmethod
    def of(cls, code: Any, name: str | None) -> _CallerPlace:
        file_name = os.path.basename(code.co_filename)
        return cls({"name": file_name, "path": code.co_filename}, code.co_name, os.path.splitext(file_name)[0], name)


_direct: _DirectRecords | None = None
_LOGGING_IMPORTED_US = time.time_ns() // 1000  # loguru's `elapsed` counts from its import, moments before


def log_process_started(
    role: ProcessRole, *, worker_id: str, module_target: str, log_file: Path
) -> None:
    """The start-up record operators look for: `process broker started` and friends,
    attributed (file, function, line) to the caller."""
    logger.opt(depth=1).bind(worker_id=worker_id, module_target=module_target, log_file=str(log_file)).info(
        STARTUP_MESSAGES[role]
    )


class JsonlFileSink:
    """A loguru sink object: each record as one JSON line appended to `path`, rotated by size.

    Writes take the sink's own lock (loguru's handler lock does not cover `log_task_record`),
    so one instance is safe for every thread of its process; it must be the only writer of
    `path` (one file per process). A file
    rotates before a write that would take it past `max_bytes`, unless it is still empty
    (a record larger than the limit gets a file of its own instead of an empty rotated one).
    """

    def __init__(self, path: Path, *, max_bytes: int, retention: timedelta) -> None:
        if max_bytes < 1:
            raise ValueError("log file max size must be at least 1 byte")
        self.path = str(path)
        self.max_bytes = max_bytes
        self.retention_seconds = retention.total_seconds()
        root, self._suffix = os.path.splitext(self.path)
        self._root = root
        self._rotated_pattern = glob.escape(root) + ".*" + glob.escape(self._suffix)
        self._fd = -1
        self._size = 0
        self._created = 0.0
        self._lock = threading.Lock()
        self._open()

    def write(self, message: Any) -> None:
        self.write_line(_serialize_record(str(message), message.record))

    def write_line(self, data: bytes) -> None:
        """Append one serialized record (loguru's records and `log_task_record`'s alike)."""
        with self._lock:
            if self._fd < 0:
                return  # stopped: loguru drops records for a removed sink too
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._size += len(data)

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    def stop(self) -> None:
        """Close the file (loguru calls this on `logger.remove()` and at exit) and apply retention."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        self._apply_retention()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._created = time.time()

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1
        stamp = datetime.fromtimestamp(self._created).strftime(ROTATED_STAMP_FORMAT)
        target = f"{self._root}.{stamp}{self._suffix}"
        counter = 1
        while os.path.exists(target):
            counter += 1
            target = f"{self._root}.{stamp}.{counter}{self._suffix}"
        os.rename(self.path, target)
        self._apply_retention()
        self._open()

    def _apply_retention(self) -> None:
        """Delete this sink's rotated files last modified longer ago than the retention."""
        cutoff = time.time() - self.retention_seconds
        for rotated in glob.glob(self._rotated_pattern):
            try:
                if os.stat(rotated).st_mtime <= cutoff:
                    os.remove(rotated)
            except OSError:
                continue


def _to_json_line(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON and a newline; anything not JSON-native is written as its `str`
    (pydantic-core's encoder: a tenth of the stdlib encoder's cost for a record)."""
    return to_json(value, fallback=str) + b"\n"


def _serialize_record(text: str, record: Record) -> bytes:
    """loguru's serialized form (`serialize=True`) of `record`, built from JSON-native values."""
    exception = record["exception"]
    if exception is not None:
        value = exception.value
        exception = {
            "type": None if exception.type is None else exception.type.__name__,
            "value": None if value is None else str(value),
            "traceback": bool(exception.traceback),
        }
    moment, elapsed, level = record["time"], record["elapsed"], record["level"]
    file, process, thread = record["file"], record["process"], record["thread"]
    serializable = {
        "text": text,
        "record": {
            "elapsed": {"repr": str(elapsed), "seconds": elapsed.total_seconds()},
            "exception": exception,
            "extra": record["extra"],
            "file": {"name": file.name, "path": file.path},
            "function": record["function"],
            "level": {"icon": level.icon, "name": level.name, "no": level.no},
            "line": record["line"],
            "message": record["message"],
            "module": record["module"],
            "name": record["name"],
            "process": {"id": process.id, "name": process.name},
            "thread": {"id": thread.id, "name": thread.name},
            "time": {"repr": str(moment), "timestamp": moment.timestamp()},
        },
    }
    return _to_json_line(serializable)


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
