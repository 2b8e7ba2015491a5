"""The thin gRPC adapter of services/inpainter/segment.py (proto/ic/v1/segmenter.proto).

The OpenCV service offers it beside its engines: GrabCut is OpenCV's too, and
the page's select tool needs no service of its own."""

from __future__ import annotations

import time

import grpc
import numpy as np

from common.config import replica_name
from common.errors import InvalidInput
from common.images import ImageLimits, decode_image, raw_mask
from ic.v1 import image_pb2, segmenter_pb2, segmenter_pb2_grpc
from services.inpainter.segment import Box, bounding_box, segment_box, segment_click

SERVICE_NAME = segmenter_pb2.DESCRIPTOR.services_by_name["Segmenter"].full_name


class SegmenterServicer(segmenter_pb2_grpc.SegmenterServicer):
    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits
        self.replica = replica_name()

    def Segment(
        self, request: segmenter_pb2.SegmentRequest, context: grpc.ServicerContext
    ) -> segmenter_pb2.SegmentResponse:
        started = time.perf_counter()
        rgb = decode_image(request.image, self.limits)
        prompt = request.WhichOneof("prompt")
        if prompt == "point":
            region = segment_click(
                rgb, request.point.x, request.point.y, request.iterations, request.grow
            )
        elif prompt == "box":
            rect = request.box
            box = Box(rect.x, rect.y, rect.x + rect.width, rect.y + rect.height)
            region = segment_box(rgb, box, request.iterations, request.grow)
        else:
            raise InvalidInput("no prompt: give a point on the object or a box round it")
        found = bounding_box(region)
        return segmenter_pb2.SegmentResponse(
            mask=raw_mask(region),
            box=(
                image_pb2.MaskRect(x=found.x0, y=found.y0, width=found.width, height=found.height)
                if found
                else None
            ),
            pixels=int(np.count_nonzero(region)),
            elapsed_ms=(time.perf_counter() - started) * 1e3,
            served_by=self.replica,
        )
