"""Undesirable-pixels explanations (Kang, Jung & Lee 2019): which regions hinder
the target class, which support it, which make the model see its competitors;
a fix-it counterfactual and a faithfulness score."""


def init_app(app) -> None:
    """Called by gateway.app.create_app: POST /api/v1/explain and its OpenAPI part."""
    from gateway.explain import http, openapi

    http.install(app)
    openapi.install(app)
