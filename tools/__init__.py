"""Developer tools: stub generation, model and gallery fetch, local runner."""
