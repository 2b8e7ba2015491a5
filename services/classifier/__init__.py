"""The classifier service: every model named by a model card, on ONNX Runtime.

- `cards`, `card_sources`: model cards (JSON) and which ones are served.
- `fetch_model`: put each card's ONNX file in place (a built-in recipe, or the
  card's url, checked against its sha256); `converters/` build EfficientNet-Lite0.
- `model_graph`, `cam_head`: check and rewrite a graph into the form we run;
  find the CAM head (last feature map, class weights) by graph analysis.
- `preprocess`, `cam`: a card's preprocessing; CAMs mapped back onto the image.
- `core`: `ClassifierModel`, the pure core (no gRPC) that owns the call;
  `onnx_model`: its ONNX Runtime `forward`; `registry`: every model, served or not.
- `server`: the thin gRPC adapter; `python -m services.classifier` runs it.
"""
