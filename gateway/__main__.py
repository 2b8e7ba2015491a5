"""`python -m gateway`: the gateway under gunicorn (gthread workers), with the
settings of gateway/gunicorn.conf.py, which containers use too.

`python -m gateway --dev` runs Flask's threaded development server instead
(one process, auto-reload off), for debugging.
"""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG_FILE = Path(__file__).with_name("gunicorn.conf.py")


def run_gunicorn() -> None:
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = ["gunicorn", "--config", str(CONFIG_FILE)]
    WSGIApplication("%(prog)s [OPTIONS]").run()


def run_dev_server() -> None:
    from common.logs import configure_logging
    from common.memory import keep_memory_in_check
    from gateway.app import create_app
    from gateway.config import GatewayConfig

    config = GatewayConfig.from_env()
    configure_logging("gateway", config.log_level)
    keep_memory_in_check()
    create_app(config).run(host=config.http_host, port=config.http_port, threaded=True)


if __name__ == "__main__":
    if "--dev" in sys.argv[1:]:
        run_dev_server()
    else:
        run_gunicorn()
