"""The Flask application factory.

`create_app()` reads the configuration from the environment (gateway/config.py);
`create_app({"rate_limit_per_min": 3})` overrides fields, `create_app(GatewayConfig(...))`
replaces it. No gRPC channel is opened here: `gateway.services.services()`
opens them on first use in the serving process (after gunicorn's fork).

Blueprints added later (gateway/explain/) reuse what is set up here:
`gateway.services.services()` for the classifier client and the backend
registry, `current_app.config["IC"]` for the configuration and limits,
`gateway.forms` for parsing parts, `gateway.openapi.openapi_document(app)` to
describe their endpoints, and the error handlers for their failures.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import errors, frontend, observability, openapi, ratelimit
from gateway.api import api
from gateway.config import GatewayConfig
from gateway.health import health
from gateway.services import ServicesHolder


def create_app(config: GatewayConfig | dict | None = None) -> Flask:
    if isinstance(config, GatewayConfig):
        settings = config
    else:
        settings = GatewayConfig.from_env().with_overrides(config or {})
    app = Flask(__name__, static_folder=None)
    app.config["IC"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    # Keep key order as built: predictions come out as the classifier ranked them.
    app.json.sort_keys = False
    app.url_map.converters["frontend_path"] = frontend.FrontendPathConverter
    if settings.proxy_hops > 0:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    holder = ServicesHolder(settings)
    app.extensions["ic"] = holder
    atexit.register(holder.close)

    errors.register_error_handlers(app)
    observability.install(app)  # first: request ids and timing for everything after
    ratelimit.install(app, settings.rate_limit_per_min, settings.rate_limit_burst)
    app.register_blueprint(health)
    app.register_blueprint(api)
    openapi.install(app)
    register_explain(app)
    app.register_blueprint(frontend.frontend)
    return app


def register_explain(app: Flask) -> None:
    """Mount gateway/explain/ when it offers itself: its package defines
    `init_app(app)`, which registers its blueprint (POST /api/v1/explain) and
    adds its path to the OpenAPI document."""
    if importlib.util.find_spec("gateway.explain") is None:
        return
    module = importlib.import_module("gateway.explain")
    init_app = getattr(module, "init_app", None)
    if init_app is not None:
        init_app(app)
