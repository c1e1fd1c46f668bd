"""OpenTelemetry tracing: one trace per playback start, from the HTTP request to each database write.

Configured only by the standard variables, and off unless `OTEL_TRACES_EXPORTER` names an exporter
(the specification's default, `otlp`, would make every local run and test dial a collector that is not
there): `console` prints one JSON line per span on stdout, `otlp` sends to `OTEL_EXPORTER_OTLP_ENDPOINT`
over `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` by default, as the specification recommends;
`grpc` where that exporter is installed). `OTEL_SDK_DISABLED=true` turns it off, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_PROPAGATORS` and `OTEL_BSP_*` work as
everywhere. Off, no SDK is loaded and every function here returns at its first line.

The context travels as W3C `traceparent` (and `tracestate`): from the request into the view
(`View.trace`), from the outbox's send span into the AMQP message headers or the `POST /viewed`
headers, and from there into the consumer's span and its database write.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from flixtube_common import config
from flixtube_common.views import View

ENABLED = False
"""True once `configure` has installed an SDK tracer provider; read by the hot paths before anything."""

_tracer: trace.Tracer = trace.NoOpTracer()
_provider: Any = None

EXPORTERS = {"console": "console", "otlp": None}  # otlp: chosen by protocol below
OTLP_PROTOCOLS = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
VIEWED = "viewed"


def configure(service: str, env: config.Env | None = None) -> bool:
    """Install a tracer provider from the OTEL_* variables; False (and nothing done) when tracing is off."""
    global ENABLED, _tracer, _provider  # noqa: PLW0603 - one provider per process, as OpenTelemetry has it
    env = os.environ if env is None else env
    names = [name.strip() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    names = [name for name in names if name != "none"]
    if ENABLED or not names or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ENABLED
    exporters = [_exporter(name, env) for name in names]

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME, when given, names the service; Resource.create reads it and the other variables.
    resource = Resource.create({} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service})
    _provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    for exporter in exporters:
        _provider.add_span_processor(BatchSpanProcessor(exporter))  # OTEL_BSP_* tune it
    trace.set_tracer_provider(_provider)
    _tracer = _provider.get_tracer("flixtube")
    ENABLED = True
    return True


def _exporter(name: str, env: config.Env) -> Any:
    if name not in EXPORTERS:
        raise config.ConfigError(f"OTEL_TRACES_EXPORTER must list console, otlp or none, got {name!r}")
    entry = EXPORTERS[name]
    if entry is None:
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
        ).strip() or "http/protobuf"
        if protocol not in OTLP_PROTOCOLS:
            raise config.ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL must be one of {', '.join(OTLP_PROTOCOLS)}, got {protocol!r}"
            )
        entry = OTLP_PROTOCOLS[protocol]
    found = entry_points(group="opentelemetry_traces_exporter", name=entry)
    if not found:
        raise config.ConfigError(f"OTEL_TRACES_EXPORTER={name}: the {entry} exporter is not installed")
    exporter_class = next(iter(found)).load()
    if name == "console":
        # One compact JSON object per line, like the logs (the default prints each span on many lines).
        return exporter_class(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + os.linesep)
    return exporter_class()


def flush(timeout_ms: int = 5000) -> None:
    """Export the spans still buffered (before a process exits)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


# The request: a SERVER span, current while the request is handled.


def start_request(method: str, route: str, path: str, headers: Mapping[str, str]) -> tuple[Span, object]:
    """Start the request's span (a child of the caller's traceparent, if any) and make it current."""
    span = _tracer.start_span(
        f"{method} {route}",
        context=propagate.extract(headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route, "url.path": path},
    )
    return span, context.attach(trace.set_span_in_context(span))


def end_request(started: tuple[Span, object], status: int, error: BaseException | None) -> None:
    span, token = started
    span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.record_exception(error)
    if status >= 500 or error is not None:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    context.detach(token)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, for a view to take along; empty when tracing is off."""
    if not ENABLED:
        return {}
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def logged_trace(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """{"traceId": ...} from a message's W3C `traceparent` header (version-traceid-spanid-flags), for its
    log lines (whether or not this process traces); empty without one."""
    value = headers.get("traceparent") if headers else None
    parts = value.split("-") if isinstance(value, str) else ()
    return {"traceId": parts[1]} if len(parts) == 4 and len(parts[1]) == 32 else {}


def current_ids() -> dict[str, str]:
    """traceId and spanId of the current span, for log lines; empty when there is none."""
    if not ENABLED:
        return {}
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "traceId": trace.format_trace_id(span_context.trace_id),
        "spanId": trace.format_span_id(span_context.span_id),
    }


# The outbox: one PRODUCER span per view and attempt, whose context the transport sends along.


@contextmanager
def sending(views: list[View]) -> Iterator[list[View]]:
    """The views to send, each carrying its send span's context in `trace`; the spans end with the block."""
    if not ENABLED:
        yield views
        return
    spans = [None if sampled_out(view.trace) else _send_span(view, len(views)) for view in views]
    recording = [span for span in spans if span is not None]
    with _ended(recording):
        yield [
            view if span is None else replace(view, trace=_injected(span))
            for view, span in zip(views, spans, strict=True)
        ]


def _send_span(view: View, count: int) -> Span:
    return _tracer.start_span(
        f"send {VIEWED}",
        context=propagate.extract(view.trace),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.operation.type": "send",
            "messaging.destination.name": VIEWED,
            "messaging.message.id": view.view_id,
            "messaging.batch.message_count": count,
        },
    )


def sampled_out(headers: Mapping[str, Any] | None) -> bool:
    """Whether a W3C traceparent says its trace is not sampled (flags without the sampled bit).

    Under the parent-based samplers (the SDK's default, and the cluster's) every span of such a trace is
    a non-recording one: skipping them saves their cost, the context still travels on unchanged.
    """
    value = headers.get("traceparent") if headers else None
    if not isinstance(value, str) or len(value) != 55:
        return False
    flags = value[-2:]
    return all(c in "0123456789abcdef" for c in flags) and not int(flags, 16) & 1


def _injected(span: Span) -> dict[str, str]:
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return headers


@contextmanager
def _ended(spans: Sequence[Span]) -> Iterator[None]:
    """End the spans with the block, each marked failed if the block raised."""
    try:
        yield
    except BaseException as error:
        for span in spans:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}"))
        raise
    finally:
        for span in spans:
            span.end()


# The subscribers: a CONSUMER span per message, and in it the database write.


def _text_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """AMQP headers hold tables, numbers and bytes too: only text values can be trace context."""
    return {key: value for key, value in (headers or {}).items() if isinstance(value, str)}


@contextmanager
def processing(
    messages: Sequence[tuple[Mapping[str, Any] | None, str]], queue: str, collection: str
) -> Iterator[None]:
    """For each (headers, viewId) written together: a CONSUMER span, child of the sender's context, with a
    CLIENT span for the one database write inside, so every view's trace shows the write it was part of."""
    if not ENABLED:
        yield
        return
    spans = []
    for headers, message_id in messages:
        if sampled_out(headers):
            continue
        consumer = _tracer.start_span(
            f"process {queue}",
            context=propagate.extract(_text_headers(headers)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.destination.name": queue,
                "messaging.message.id": message_id,
            },
        )
        spans += [_write_span(collection, len(messages), trace.set_span_in_context(consumer)), consumer]
    with _ended(spans):
        yield


@contextmanager
def writing(collection: str) -> Iterator[None]:
    """A CLIENT span for one database write, child of the current span (history's `POST /viewed`)."""
    if not ENABLED:
        yield
        return
    with _ended([_write_span(collection, 1, None)]):
        yield


def _write_span(collection: str, count: int, parent: context.Context | None) -> Span:
    return _tracer.start_span(
        f"insert {collection}",
        context=parent,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "mongodb",
            "db.operation.name": "insert",
            "db.collection.name": collection,
            "db.operation.batch.size": count,
        },
    )
