"""tools/page_driver starts `tools.run_local` for the screenshots and the page
benchmark: every port that system listens on must be a free one, so it never
collides with a system already running on the default ports."""

from __future__ import annotations

from tools import page_driver, run_local


def test_every_listening_port_of_run_local_is_given_a_free_one():
    command, url = page_driver.run_local_command()
    assert command[1:3] == ["-m", "tools.run_local"]
    given = vars(run_local.parse_args(command[3:]))
    defaults = vars(run_local.parse_args([]))
    port_options = {name for name in defaults if name.endswith("_port")}
    assert {"http_port", "explainer_port", "inpainter_port"} <= port_options
    for name in port_options:
        assert given[name] != defaults[name], f"--{name.replace('_', '-')} is left at its default"
    assert not given["metrics"], "metrics ports are fixed (9101-9104): they must be off"
    assert len({given[name] for name in port_options}) == len(port_options)
    assert url == f"http://127.0.0.1:{given['http_port']}"
