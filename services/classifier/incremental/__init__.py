"""Exact incremental inference for many edits of one image (after Krypton:
Nakandala, Kumar & Papakonstantinou, SIGMOD 2019, "Incremental and Approximate
Inference for Faster Occlusion-based Deep CNN Explanations").

An edit changes a rectangle of the input; in every later map it can change
only its projective field. The engine runs the base image once, keeps every
activation, and for each edit recomputes, layer by layer, only that field
(with the context the kernels read), all edits of a batch at once. Where the
fields cover whole maps the rest of the network runs as a plain batch. The
results equal full inference up to float rounding (tests: within 1e-4).

Interface::

    engine = IncrementalEngine(model, input_name, output_name, threads=1, cache=None)
                                     # threads: the base run's ONNX Runtime threads; the
                                     # edits' batches run that many at once, each kernel
                                     # on one thread (short runs gain nothing from a pool)
                                     # cache: an ActivationCache shared with other engines
    engine.supported, engine.reason  # False + "operator Transpose is not supported":
                                     # run() then does full inference per edit
    base = engine.prepare(tensor)    # float32 [1, C, H, W] network input (channels
                                     # first); runs the base image, or takes it from
                                     # engine.cache (prepare_base also says which)
    out = engine.run(base, patches)  # patches: (y, x, float32 [C, h, w]) in network-
                                     # input coordinates, or None for "no change";
                                     # out: the output tensor, one row per patch
    engine.warm_up(height, width)    # builds what a first real call would wait for

    preprocessor = Preprocessor(card.input)          # services/classifier/preprocess.py
    geometry = preprocessor.geometry(width, height)  # resize and crop of this image
    patches = edit_patches(base_rgb, [(x, y, rgb), ...], geometry, preprocessor)

Tuning (keyword arguments of IncrementalEngine): `batch_size` (16) patches per
batch at most; `tolerance` (0.1) how much more work than its patches' own a
batch may do, since it computes its largest region for all; `full_fraction`
(1.0) the share of a map from which a region is computed whole, so the plain
tail takes over sooner (0.6 suits EfficientNet-Lite0, 1.0 SqueezeNet);
`cache_bytes` (256 MiB) for the base activations when no cache is given.
`engine.multiply_adds(base, patches)` gives the convolution work of whole-
network inference, of each patch's exact field and of the batches' regions.

`edit_patches` turns edits of the request image (a rectangle's new RGB pixels)
into network-input patches: the rectangle mapped through the card's resize,
widened by the resize filter's support, shifted by any crop (an edit outside
the crop gives None), its values cut from the real preprocessing of the edited
image so they are bit-identical to what full inference sees. The engine works
on channels-first inputs: an NHWC card's edits are not for it.

Operators: Conv (grouped, depthwise, dilated, strided, asymmetric pads,
auto_pad), Relu, Clip, MaxPool and AveragePool (pads, ceil_mode,
count_include_pad), Concat on channels, Add (two maps, or a per-channel
constant), GlobalAveragePool, and Flatten and Gemm after it. Any other operator
makes `supported` False.

Modules: `plan` (graph analysis and projective-field arithmetic), `regions`
(per-patch reach and the regions a batch recomputes), `kernels` (the ONNX
Runtime sessions), `runtime` (the gather-compute-scatter), `engine`, `edits`,
`cache` (the base activations, least recently used first out, bounded by bytes).
"""

from services.classifier.incremental.cache import ActivationCache
from services.classifier.incremental.edits import edit_patches, network_rect
from services.classifier.incremental.engine import IncrementalEngine

__all__ = ["ActivationCache", "IncrementalEngine", "edit_patches", "network_rect"]
