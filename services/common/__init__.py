"""What every gRPC service shares: image decoding and limits, the server runner
(health, reflection, graceful shutdown, bounded concurrency), JSON logs with
request ids, and Prometheus metrics."""
