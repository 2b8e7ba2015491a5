"""What every gRPC service of this project runs on: the server runner (health,
reflection, graceful shutdown, bounded concurrency, request ids), Prometheus
metrics, and the one implementation of the Inpainter contract that both
inpainting services share (the engine interface and its servicer)."""
