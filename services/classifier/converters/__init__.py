"""Build-time converters: pretrained weights in other formats -> ONNX graphs the
classifier serves. Nothing here runs in the service itself, and none of it needs
torch: the weights are read by our own restricted reader (`torch_legacy`).
"""
