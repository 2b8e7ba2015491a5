"""`python -m services.inpainter`: the OpenCV Inpainter on :50052 (metrics :9102)."""

from common.config import env_str
from common.logs import configure_logging
from services.inpainter.server import create_service


def main() -> None:
    configure_logging("inpainter", env_str("IC_LOG_LEVEL", "INFO"))
    create_service().serve_forever()


if __name__ == "__main__":
    main()
