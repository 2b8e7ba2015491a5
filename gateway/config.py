"""The gateway's configuration: environment variables with defaults that work
locally (every service on localhost at its conventional port)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from common.channels import grpc_target
from common.config import env_float, env_int, env_str
from common.images import ImageLimits

REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def png_compression_setting(raw: str) -> str:
    """IC_PNG_COMPRESSION: `auto` or a zlib level 0..9."""
    if raw == "auto" or (raw.isdigit() and 0 <= int(raw) <= 9):
        return raw
    raise SystemExit(f"IC_PNG_COMPRESSION={raw!r}: use auto or a zlib level 0..9")


@dataclass
class GatewayConfig:
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    classifier_address: str = "dns:///localhost:50051"
    inpaint_addresses: list[str] = field(
        default_factory=lambda: ["dns:///localhost:50052", "dns:///localhost:50053"]
    )
    # The Segmenter (select tool): the OpenCV inpainting service offers it.
    segmenter_address: str = "dns:///localhost:50052"
    default_backend: str = "telea"
    # The Explainer service: /api/v1/explain relays to it (nothing else needs it).
    explainer_address: str = "dns:///localhost:50054"
    gallery_dir: Path = REPO / "gallery"
    frontend_dir: Path = REPO / "frontend"
    max_upload_bytes: int = 10 * MiB
    # 12.6 MP: a phone's 4032x3024 photo passes; so does any side up to max_side,
    # but not a full 4096x4096 square (the services' own, looser limit).
    max_pixels: int = 4096 * 3072
    max_side: int = 4096
    # zlib level of the PNGs in answers: "auto" stores pictures up to 512x512
    # (the page's working copies: compressing one costs more than it saves)
    # and compresses larger ones (a 12 MP photo: 36 MB stored, 11 MB at level 1
    # for the same time); or 0 (stored) .. 9 for every picture (gateway/png.py).
    png_compression: str = "auto"
    # At most this many CAMs per request: each is a full-size image.
    max_cams: int = 16
    # CAM PNGs travel at most this many pixels on their longer side (the maps'
    # own resolution is a few dozen cells); `cam_size=full` asks for the image's size.
    cam_max_side: int = 512
    # Pixels of decoded request images in flight per gateway process: four
    # photos at the size limit. Beyond that requests wait (up to
    # pixel_wait_s, then 429) instead of multiplying the process's memory.
    max_pixels_in_flight: int = 4 * 4096 * 3072
    pixel_wait_s: float = 20.0
    # Deadlines of the gRPC calls, in seconds.
    classify_timeout_s: float = 10.0
    inpaint_timeout_s: float = 30.0
    segment_timeout_s: float = 15.0
    info_timeout_s: float = 2.0
    health_timeout_s: float = 1.0
    # Deadline of a whole explanation stream (the explainer's own work included).
    explain_timeout_s: float = 120.0
    # How often the engine table is refreshed from every backend's GetInfo.
    backend_refresh_s: float = 5.0
    # Requests per minute per client on the compute endpoints; 0 = no limit.
    rate_limit_per_min: int = 0
    rate_limit_burst: int = 0
    # Reverse proxies in front of the gateway whose X-Forwarded-For is trusted
    # (the rate limit then sees the real client); 0 = none, use the peer address.
    proxy_hops: int = 0
    workers: int = 1
    threads: int = 16
    log_level: str = "INFO"

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_side=self.max_side, max_pixels=self.max_pixels)

    @classmethod
    def from_env(cls) -> GatewayConfig:
        default = cls()
        backends = env_str("IC_INPAINT_BACKENDS", ",".join(default.inpaint_addresses))
        return cls(
            http_host=env_str("IC_HTTP_HOST", default.http_host),
            http_port=env_int("IC_HTTP_PORT", default.http_port),
            classifier_address=grpc_target(
                env_str("IC_CLASSIFIER_ADDR", default.classifier_address)
            ),
            inpaint_addresses=[grpc_target(a) for a in backends.split(",") if a.strip()],
            segmenter_address=grpc_target(env_str("IC_SEGMENTER_ADDR", default.segmenter_address)),
            default_backend=env_str("IC_DEFAULT_BACKEND", default.default_backend),
            explainer_address=grpc_target(env_str("IC_EXPLAINER_ADDR", default.explainer_address)),
            gallery_dir=Path(env_str("IC_GALLERY_DIR", str(default.gallery_dir))),
            frontend_dir=Path(env_str("IC_FRONTEND_DIR", str(default.frontend_dir))),
            max_upload_bytes=env_int("IC_MAX_UPLOAD_BYTES", default.max_upload_bytes),
            max_pixels=env_int("IC_MAX_PIXELS", default.max_pixels),
            max_side=env_int("IC_MAX_SIDE", default.max_side),
            png_compression=png_compression_setting(
                env_str("IC_PNG_COMPRESSION", default.png_compression)
            ),
            max_cams=env_int("IC_MAX_CAMS", default.max_cams),
            cam_max_side=env_int("IC_CAM_MAX_SIDE", default.cam_max_side),
            max_pixels_in_flight=env_int("IC_MAX_PIXELS_IN_FLIGHT", default.max_pixels_in_flight),
            pixel_wait_s=env_float("IC_PIXEL_WAIT_S", default.pixel_wait_s),
            classify_timeout_s=env_float("IC_CLASSIFY_TIMEOUT_S", default.classify_timeout_s),
            inpaint_timeout_s=env_float("IC_INPAINT_TIMEOUT_S", default.inpaint_timeout_s),
            segment_timeout_s=env_float("IC_SEGMENT_TIMEOUT_S", default.segment_timeout_s),
            info_timeout_s=env_float("IC_INFO_TIMEOUT_S", default.info_timeout_s),
            health_timeout_s=env_float("IC_HEALTH_TIMEOUT_S", default.health_timeout_s),
            explain_timeout_s=env_float("IC_EXPLAIN_TIMEOUT_S", default.explain_timeout_s),
            backend_refresh_s=env_float("IC_BACKEND_REFRESH_S", default.backend_refresh_s),
            rate_limit_per_min=env_int("IC_RATE_LIMIT_PER_MIN", default.rate_limit_per_min),
            rate_limit_burst=env_int("IC_RATE_LIMIT_BURST", default.rate_limit_burst),
            proxy_hops=env_int("IC_PROXY_HOPS", default.proxy_hops),
            workers=env_int("IC_GATEWAY_WORKERS", default.workers),
            threads=env_int("IC_GATEWAY_THREADS", default.threads),
            log_level=env_str("IC_LOG_LEVEL", default.log_level),
        )

    def with_overrides(self, overrides: dict) -> GatewayConfig:
        """A copy with some fields replaced (create_app(config={...}) in tests)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown gateway config keys: {sorted(unknown)}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(overrides)
        return GatewayConfig(**values)
