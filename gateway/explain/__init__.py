"""POST /api/v1/explain: a relay to the Explainer service (services/explainer/),
and its part of the OpenAPI document. No image science here: the explainer
computes, the gateway parses the form, relays the stream and turns its events
into the JSON of API.md."""


def init_app(app) -> None:
    """Called by gateway.app.create_app: POST /api/v1/explain and its OpenAPI part."""
    from gateway.explain import openapi, relay

    relay.install(app)
    openapi.install(app)
