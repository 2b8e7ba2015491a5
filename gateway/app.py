"""The Flask application factory.

`create_app()` reads the configuration from the environment (gateway/config.py);
`create_app({"rate_limit_per_min": 3})` overrides fields, `create_app(GatewayConfig(...))`
replaces it. No gRPC channel is opened here: `gateway.clients.clients()`
opens them on first use in the serving process (after gunicorn's fork).

Blueprints such as gateway/explain/ reuse what is set up here:
`gateway.clients.clients()` for the gRPC clients (classifier, backend
registry, explainer), `current_app.config["IC"]` for the configuration and limits,
`gateway.forms` for parsing parts, `gateway.openapi.openapi_document(app)` to
describe their endpoints, and the error handlers for their failures.
"""

from __future__ import annotations

import atexit

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from common.budget import PixelBudget
from gateway import errors, forms, frontend, observability, openapi, ratelimit
from gateway.api import api
from gateway.clients import ClientsHolder
from gateway.config import GatewayConfig
from gateway.explain import init_app as install_explain
from gateway.health import health
from gateway.multipart import GatewayRequest
from gateway.segment import segment_blueprint


def create_app(config: GatewayConfig | dict | None = None) -> Flask:
    if isinstance(config, GatewayConfig):
        settings = config
    else:
        settings = GatewayConfig.from_env().with_overrides(config or {})
    app = Flask(__name__, static_folder=None)
    app.request_class = GatewayRequest  # its multipart parser (gateway/multipart.py)
    app.config["IC"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    # Keep key order as built: predictions come out as the classifier ranked them.
    app.json.sort_keys = False
    app.url_map.converters["frontend_path"] = frontend.FrontendPathConverter
    if settings.proxy_hops > 0:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    holder = ClientsHolder(settings)
    app.extensions["ic"] = holder
    app.extensions["ic_pixels"] = PixelBudget(settings.max_pixels_in_flight)
    app.teardown_request(forms.release_pixels)
    atexit.register(holder.close)

    errors.register_error_handlers(app)
    observability.install(app)  # first: request ids and timing for everything after
    ratelimit.install(app, settings.rate_limit_per_min, settings.rate_limit_burst)
    app.register_blueprint(health)
    app.register_blueprint(api)
    openapi.install(app)
    install_explain(app)  # POST /api/v1/explain and its OpenAPI path
    app.register_blueprint(segment_blueprint)
    app.register_blueprint(frontend.frontend)
    return app
