"""`python -m services.patchmatch`: the PatchMatch / Resynthesizer Inpainter on
:50053 (metrics :9103). Build the C engine first with `make native`."""

from common.config import env_str
from common.logs import configure_logging
from services.patchmatch.server import create_service


def main() -> None:
    configure_logging("patchmatch", env_str("IC_LOG_LEVEL", "INFO"))
    create_service().serve_forever()


if __name__ == "__main__":
    main()
