"""The Explainer service: "undesirable pixels" explanations (Kang, Jung & Lee
2019). Which regions of a photo hinder a class, which support it, which make
the model see its competitors; a fix-it counterfactual and a faithfulness score.

- grid.py, core.py: the pure core (windows, resolutions, weight of evidence, maps)
- calls.py, windows.py, clients.py: the calls to the inpainters and the classifier
- explainer.py: one explanation as a stream of events
- faithfulness.py: maps against baselines (`python -m services.explainer.faithfulness`)
- server.py, __main__.py: the thin gRPC server (proto/ic/v1/explainer.proto)
"""
