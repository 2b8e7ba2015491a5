"""The classifier service: SqueezeNet 1.1 on ONNX Runtime, probabilities and CAMs.

- `fetch_model`: find the model file locally or download and verify it.
- `model_graph`: rewrite either ONNX file into the form we run (dynamic height
  and width, global average pooling, the CAM tensor exposed).
- `preprocess`: whole image, shorter side 256 px, ImageNet normalisation.
- `core`: `SqueezeNetClassifier`, the pure core (no gRPC): batches, softmax,
  top-k, pinned classes, class activation maps.
- `server`: the thin gRPC adapter; `python -m services.classifier` runs it.
"""
