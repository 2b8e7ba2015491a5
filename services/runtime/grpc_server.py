"""Runs a gRPC service the same way for every service of the project.

What it adds around the servicers:
- gRPC health: the overall status is SERVING once the server is up; each named
  service stays NOT_SERVING until its core is loaded and warmed (`warm_up`).
- Server reflection, so grpcurl and friends can list the API.
- Bounded concurrency (`maximum_concurrent_rpcs`: the excess is answered
  RESOURCE_EXHAUSTED), message limits sized for images, a maximum connection
  age so clients re-resolve DNS and find new replicas.
- An interceptor that takes the request id from metadata into the logs, maps
  InvalidInput to INVALID_ARGUMENT (and anything unexpected to INTERNAL,
  logged, the server going on serving), and records Prometheus metrics.
- Graceful shutdown on SIGTERM/SIGINT: health goes NOT_SERVING, in-flight calls
  get `grace` seconds, then the process exits.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.channels import MAX_MESSAGE_BYTES
from common.config import env_float, env_int, env_str
from common.errors import (
    ERROR_SOURCE_KEY,
    Busy,
    EngineUnavailable,
    InvalidInput,
    NotFound,
    ServiceCallFailed,
    Unavailable,
)
from common.logs import request_id_var
from common.memory import keep_memory_in_check
from services.runtime.metrics import GRPC_LATENCY, GRPC_REQUESTS, start_metrics_server

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    host: str
    port: int
    workers: int
    max_concurrent_rpcs: int
    metrics_port: int
    max_connection_age_s: float
    grace_s: float
    # Calls still running when a connection reaches its maximum age get this
    # long before it is closed under them: more than the longest call.
    connection_age_grace_s: float = 10.0

    @classmethod
    def from_env(
        cls,
        default_port: int,
        default_metrics_port: int,
        workers: int = 4,
        longest_call_s: float = 10.0,
    ):
        return cls(
            host=env_str("IC_GRPC_HOST", "[::]"),
            port=env_int("IC_GRPC_PORT", default_port),
            workers=env_int("IC_GRPC_WORKERS", workers),
            max_concurrent_rpcs=env_int("IC_MAX_CONCURRENT_RPCS", 32),
            metrics_port=env_int("IC_METRICS_PORT", default_metrics_port),
            max_connection_age_s=env_float("IC_MAX_CONNECTION_AGE_S", 30.0),
            grace_s=env_float("IC_SHUTDOWN_GRACE_S", 5.0),
            connection_age_grace_s=env_float("IC_MAX_CONNECTION_AGE_GRACE_S", longest_call_s),
        )


def _status_for(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, EngineUnavailable):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, Unavailable):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, Busy):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, ServiceCallFailed) and hasattr(exc.error, "code"):
        # Another service's answer, passed on with its own status.
        return exc.error.code()
    return grpc.StatusCode.INTERNAL


class _ServiceInterceptor(grpc.ServerInterceptor):
    """Request ids, error mapping and metrics for every unary and server-streaming RPC."""

    def __init__(self, service: str) -> None:
        self.service = service

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler_call_details.method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _enter(self, context):
        metadata = dict(context.invocation_metadata() or ())
        return request_id_var.set(metadata.get("x-request-id", "-"))

    def _finish(self, method: str, start: float, code: grpc.StatusCode) -> None:
        elapsed = time.perf_counter() - start
        GRPC_REQUESTS.labels(self.service, method, code.name).inc()
        GRPC_LATENCY.labels(self.service, method).observe(elapsed)
        log.info(
            "rpc",
            extra={"method": method, "code": code.name, "duration_ms": round(elapsed * 1e3, 2)},
        )

    def _fail(self, context, method: str, start: float, exc: Exception):
        code = _status_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("unexpected error in %s", method)
            message = f"internal error in {method}: {type(exc).__name__}"
        else:
            message = str(exc)
        self._finish(method, start, code)
        # Whose failure it is: this service's own words, or another service's
        # answer passed on. A caller relaying it (the gateway in front of the
        # explainer) can then tell "the explainer is down" from "the explainer
        # says the classifier is down".
        source = exc.service if isinstance(exc, ServiceCallFailed) else self.service
        context.set_trailing_metadata(((ERROR_SOURCE_KEY, source),))
        context.abort(code, message)

    def _wrap_unary(self, behaviour: Callable, method: str) -> Callable:
        def wrapped(request, context):
            token = self._enter(context)
            start = time.perf_counter()
            try:
                response = behaviour(request, context)
            except Exception as exc:
                if _is_abort(exc, context):
                    self._finish(method, start, context.code() or grpc.StatusCode.UNKNOWN)
                    raise
                self._fail(context, method, start, exc)
            else:
                self._finish(method, start, grpc.StatusCode.OK)
                return response
            finally:
                request_id_var.reset(token)

        return wrapped

    def _wrap_stream(self, behaviour: Callable, method: str) -> Callable:
        def wrapped(request, context):
            token = self._enter(context)
            start = time.perf_counter()
            try:
                yield from behaviour(request, context)
            except GeneratorExit:
                # The client went away mid-stream: grpc closes the generator.
                self._finish(method, start, grpc.StatusCode.CANCELLED)
                raise
            except Exception as exc:
                if _is_abort(exc, context):
                    self._finish(method, start, context.code() or grpc.StatusCode.UNKNOWN)
                    raise
                self._fail(context, method, start, exc)
            else:
                code = grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED
                self._finish(method, start, code)
            finally:
                request_id_var.reset(token)

        return wrapped


def _is_abort(exc: Exception, context) -> bool:
    # context.abort raises a bare Exception after setting the status on the
    # context: the status, not the exception, says what happened.
    code = context.code()
    return isinstance(exc, grpc.RpcError) or (code is not None and code != grpc.StatusCode.OK)


class GrpcService:
    """A gRPC server with health, reflection, metrics and graceful shutdown.

    `register(server)` adds the servicers; `warm_up()` loads and warms the core
    (it runs after the server has started, so health answers NOT_SERVING
    meanwhile); `service_names` are the fully qualified names to report.
    """

    def __init__(
        self,
        name: str,
        service_names: Iterable[str],
        register: Callable[[grpc.Server], None],
        config: ServerConfig,
        warm_up: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.service_names = list(service_names)
        self.config = config
        self._warm_up = warm_up
        self._stopped = threading.Event()
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix=name),
            interceptors=[_ServiceInterceptor(name)],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_connection_age_ms", int(config.max_connection_age_s * 1000)),
                ("grpc.max_connection_age_grace_ms", int(config.connection_age_grace_s * 1000)),
                ("grpc.so_reuseport", 0),
            ],
        )
        register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = self.server.add_insecure_port(f"{config.host}:{config.port}")
        if not self.port:
            raise SystemExit(f"{name}: cannot listen on {config.host}:{config.port}")

    def start(self) -> None:
        """Start serving, then warm up the core and flip the named services to SERVING."""
        keep_memory_in_check()  # large images: give the memory back after a burst
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        for service in self.service_names:
            self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server.start()
        start_metrics_server(self.config.metrics_port)
        log.info("listening", extra={"port": self.port, "metrics_port": self.config.metrics_port})
        started = time.perf_counter()
        self._warm_up()
        for service in self.service_names:
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("ready", extra={"warm_up_ms": round((time.perf_counter() - started) * 1e3, 1)})

    def stop(self, *_signal_args) -> None:
        """Graceful shutdown: report NOT_SERVING, let in-flight calls finish, exit."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("shutting down", extra={"grace_s": self.config.grace_s})
        self.health.enter_graceful_shutdown()
        self.server.stop(self.config.grace_s).wait()

    def serve_forever(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.start()
        self.server.wait_for_termination()
        log.info("stopped")
