"""The installed package's lab pieces where a hub admin and a user put them: the pool file in
the environment's etc/jupyter and in the user's config directory, and the server extension."""

from __future__ import annotations

import json
import re

import pytest

SYSTEM_POOL = "exporters:\n  bench-1: {endpoint: '10.0.0.5:7777'}\n  bench-2: {endpoint: '10.0.0.6:7777'}\n"
USER_POOL = "exporters:\n  bench-1: {endpoint: 'unix:/run/my-bench.sock'}\n"
READ_POOL = (
    "from jumpstarter_jupyter.client import pool; import json; "
    "print(json.dumps({n: e.endpoint for n, e in pool.load_pool().items()}))"
)


@pytest.fixture
def system_pool(installed):
    """A pool file in the installed environment's ``{sys.prefix}/etc/jupyter`` (removed after)."""
    path = installed.path / "etc" / "jupyter" / "jumpstarter-pool.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SYSTEM_POOL)
    yield path
    path.unlink()


def test_the_environments_pool_is_read_and_the_users_entry_wins(installed, system_pool, tmp_path):
    alone = installed.run("python", "-c", READ_POOL, env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    assert json.loads(alone.stdout) == {"bench-1": "10.0.0.5:7777", "bench-2": "10.0.0.6:7777"}
    (tmp_path / "jumpstarter-pool.yaml").write_text(USER_POOL)
    both = installed.run("python", "-c", READ_POOL, env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    assert json.loads(both.stdout) == {"bench-1": "unix:/run/my-bench.sock", "bench-2": "10.0.0.6:7777"}


def test_the_server_extension_is_installed_enabled(installed, tmp_path):
    listed = installed.run(
        "jupyter", "server", "extension", "list", env={"JUPYTER_CONFIG_DIR": str(tmp_path)}
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)  # its colours
    assert "jumpstarter_jupyter.lab enabled" in text and re.search(r"jumpstarter_jupyter\.lab\s+OK", text)
    assert "jupyter_server_proxy enabled" in text
