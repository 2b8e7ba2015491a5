"""gunicorn settings of the gateway, for containers and for `python -m gateway`.

gthread workers: the gateway mostly waits on gRPC, so threads give concurrency
cheaply. The app is not preloaded, and even if it were, no gRPC channel exists
before a request arrives (gateway/services.py builds them per process), so
every worker opens its own channels after the fork.

Environment: IC_HTTP_HOST, IC_HTTP_PORT, IC_GATEWAY_WORKERS, IC_GATEWAY_THREADS,
IC_GATEWAY_TIMEOUT_S, IC_LOG_LEVEL. With more than one worker, metrics are
collected across workers in PROMETHEUS_MULTIPROC_DIR (a temporary directory
unless set).
"""

import os
import shutil
import tempfile
import threading

from common.config import env_int
from gateway.config import GatewayConfig

_config = GatewayConfig.from_env()

wsgi_app = "gateway.app:create_app()"
bind = [f"{_config.http_host}:{_config.http_port}"]
worker_class = "gthread"
workers = max(1, _config.workers)
threads = max(1, _config.threads)
# Explain requests take seconds; the gthread heartbeat does not depend on them.
timeout = env_int("IC_GATEWAY_TIMEOUT_S", 120)
graceful_timeout = 10
keepalive = 30
accesslog = None  # the app logs one JSON line per request itself
# No control socket: several gateways may run on one host (tests, scale-out).
control_socket_disable = True
loglevel = _config.log_level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "common.logs.JsonFormatter", "service": "gateway"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": _config.log_level.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
}

_own_metrics_dir = None
if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set before any worker imports prometheus_client, so every worker writes there.
    _own_metrics_dir = tempfile.mkdtemp(prefix="ic-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics_dir


def post_worker_init(worker):
    """Give memory back after large requests (common/memory.py), and open this
    worker's channels and read the backends' engines now, in the background,
    so the first request does not pay for it."""
    from common.memory import keep_memory_in_check

    keep_memory_in_check()

    def warm() -> None:
        from gateway.clients import clients

        try:
            current = clients(worker.wsgi)
            current.backends.ensure_started()
            current.classifier.model_info()
        except Exception as exc:  # a dependency still starting: requests will retry
            worker.log.info("warm-up incomplete: %s", exc)

    threading.Thread(target=warm, name="warm-up", daemon=True).start()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
