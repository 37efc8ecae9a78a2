"""Logging setup: JSON lines on stderr for machines, readable console output on a terminal.

structlog (and the rich it pulls in when installed) is imported on the first log event, not
when this module is imported: `recorder --help` or `recorder inspect` never log, and importing
structlog costs more than the whole of either command.
"""

from __future__ import annotations

import errno
import importlib.util
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

from recorder.errors import ConfigError
from recorder.units import MASK, mask_url

if TYPE_CHECKING:
    import logging

    from structlog.typing import (
        EventDict,
        ExceptionRenderer,
        FilteringBoundLogger,
        Processor,
        WrappedLogger,
    )

LEVELS: Final = {
    # logging's own numbers, written out: the stdlib module loads only once something logs.
    "debug": 10,
    "info": 20,
    "warning": 30,
    "error": 40,
    "critical": 50,
}
FORMATS: Final = ("auto", "json", "console")
_SECRET_KEY: Final = re.compile(r"password|passwd|secret|token|seed|creds|credential|auth", re.I)
# The stdlib handler we installed last, so reconfiguring replaces it without touching others.
_installed: logging.Handler | None = None
# (level, format) asked for by defer_logging and not yet applied.
_deferred: tuple[str, str] | None = None
# Whether configure_logging chose JSON lines; None until it has run.
_json_lines: bool | None = None


class _Failures:
    """Log lines lost to a failing sink; threads log concurrently, so the count takes a lock."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


_failures: Final = _Failures()


def log_write_errors() -> int:
    """Log lines lost so far because the sink failed (closed stderr, broken pipe, hung-up tty)."""
    return _failures.count


class SafeStream:
    """A text sink that never raises: a failed write or flush is counted and the line is lost.

    Logging is called from signal handlers, the writer thread and shutdown paths; an exception
    from a closed stderr, a pipe whose reader left or a hung-up terminal must not stop any of
    them. `stream` None (the process started with stderr closed) loses every line.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        stream = self.stream
        if stream is None:
            _failures.add()
            return 0
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: the file object is closed
            _failures.add()
            if not isinstance(exc, OSError) or exc.errno in _GONE:
                # The reader or terminal is gone for good: retrying each line is wasted work.
                self.stream = None
        return len(text)

    def flush(self) -> None:
        # write() flushed already; a stdlib handler's extra flush has nothing left to do.
        return

    def isatty(self) -> bool:
        return self.stream is not None and _isatty(self.stream)


# Errors after which a sink never works again (unlike ENOSPC or EAGAIN, which may pass).
_GONE: Final = frozenset({errno.EPIPE, errno.EIO, errno.EBADF, errno.ENXIO, errno.ECONNRESET})


def _mask(key: str, value: Any) -> Any:
    # File names of secrets are useful in logs; the secrets themselves never are. Numbers are
    # counts (objects of kind Secret), never secrets: the config takes those only as strings.
    if (
        _SECRET_KEY.search(key)
        and not key.endswith(("_file", "_path"))
        and value not in (None, "")
        and not isinstance(value, int | float)
    ):
        return MASK
    if isinstance(value, str):
        return mask_url(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: _mask(str(k), v) for k, v in value.items()}
    return value


def mask_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace values of secret-looking keys and passwords inside URLs with `***`."""
    return {key: _mask(key, value) for key, value in event_dict.items()}


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False


def _console_tb(colors: bool) -> ExceptionRenderer:
    import structlog

    if importlib.util.find_spec("rich") is None:
        return structlog.dev.plain_traceback
    # Locals may hold secrets and payloads, so tracebacks never show them.
    if colors:
        return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.RichTracebackFormatter(color_system=None, show_locals=False)


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Send structlog and stdlib logging to `stream` (default: the current sys.stderr).

    `fmt` "auto" writes JSON lines unless the stream is a terminal; "json" and "console" force one.
    """
    global _deferred, _json_lines
    _check(level, fmt)
    _deferred = None
    import structlog

    # Resolved at call time, not import time, so a replaced sys.stderr (pytest, the CLI) is used.
    out = SafeStream(stream if stream is not None else sys.stderr)
    json_lines = _json_lines = fmt == "json" or (fmt == "auto" and not out.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        mask_secrets,
    ]
    colors = out.isatty()
    # Structured tracebacks without local variables: locals may hold secrets and payloads.
    exceptions = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
    )
    renderer: list[Processor] = (
        [exceptions, structlog.processors.JSONRenderer()]
        if json_lines
        else [structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=_console_tb(colors))]
    )
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=cast(TextIO, out)),
        # Module-level loggers are created at import, before this runs: let them see the change.
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, LEVELS[level], shared, renderer)


def _route_stdlib(
    out: SafeStream, level: int, shared: list[Processor], renderer: list[Processor]
) -> None:
    """Render stdlib records (nats-py, asyncio) like ours, so stderr stays one format."""
    global _installed
    import logging

    import structlog

    handler = logging.StreamHandler(cast(TextIO, out))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    root.setLevel(level)
    _installed = handler


def _check(level: str, fmt: str) -> None:
    if level not in LEVELS:
        raise ConfigError("log.level", f"must be one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in FORMATS:
        raise ConfigError("log.format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")


def defer_logging(level: str = "info", fmt: str = "auto") -> None:
    """Check `level` and `fmt` now; configure_logging them on the first event, or start_logging."""
    global _deferred
    _check(level, fmt)
    _deferred = (level, fmt)


def logs_json_lines() -> bool:
    """Whether log events are (or, once something logs, will be) written as JSON lines."""
    if _deferred is None and _json_lines is not None:
        return _json_lines
    fmt = _deferred[1] if _deferred is not None else "auto"
    return fmt == "json" or (fmt == "auto" and not _isatty(sys.stderr))


def start_logging() -> None:
    """Apply what defer_logging asked for; before handing control to a library that logs itself."""
    if _deferred is not None:
        configure_logging(*_deferred)


class _Logger:
    """Stands in for structlog's logger until an event is logged, then forwards to it."""

    def __init__(self, subsystem: str) -> None:
        self._subsystem = subsystem
        self._bound: Any = None

    def __getattr__(self, name: str) -> Any:
        if _deferred is not None:
            configure_logging(*_deferred)
        if self._bound is None:
            import structlog

            self._bound = structlog.get_logger(subsystem=self._subsystem)
        return getattr(self._bound, name)


def get_logger(subsystem: str) -> FilteringBoundLogger:
    """Return a logger that tags each event with `subsystem` and follows later configuration."""
    return cast("FilteringBoundLogger", _Logger(subsystem))


def reset_logging() -> None:
    """Undo configure_logging: structlog defaults, and our stdlib handler removed (for tests)."""
    global _installed, _deferred, _json_lines
    _deferred = None
    _json_lines = None
    if _installed is not None:
        import logging

        logging.getLogger().removeHandler(_installed)
        _installed = None
    if "structlog" in sys.modules:
        sys.modules["structlog"].reset_defaults()
