"""The hub URL an exporter verifies holders with: from the config's ``lease:`` section or
``--hub-api-url``; a wrong one is named where it was written, and an unreachable hub refuses."""

from __future__ import annotations

import subprocess
import sys

import pytest

from browser.conftest import free_port
from jumpstarter_jupyter.errors import ConfigError
from jumpstarter_jupyter.exporter import parse_config
from jumpstarter_jupyter.exporter.identity import HubIdentity, IdentityRefused
from support import run_async

CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  power:
    type: MockPower
lease:
  required: true
  hub_api_url: {url}
"""


def test_the_config_takes_the_hubs_api_url():
    policy = parse_config(CONFIG.format(url="http://127.0.0.1:8081/hub/api/"), "lab.yaml").lease
    assert policy.hub_api_url == "http://127.0.0.1:8081/hub/api"


def test_a_wrong_hub_url_is_named_with_file_path_and_line():
    with pytest.raises(ConfigError) as error:
        parse_config(CONFIG.format(url="hub.lab:8081"), "lab.yaml")
    assert str(error.value) == (
        "lab.yaml: lease.hub_api_url (line 8): expected the hub's API URL, such as "
        "http://127.0.0.1:8081/hub/api, got 'hub.lab:8081'"
    )


def test_a_wrong_hub_url_on_the_command_line_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "jumpstarter_jupyter", "demo", "--hub-api-url", "hub.lab"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--hub-api-url: expected the hub's API URL" in result.stderr


def test_an_unreachable_hub_refuses_naming_it():
    url = f"http://127.0.0.1:{free_port()}/hub/api"  # nothing listens there
    with pytest.raises(IdentityRefused, match=f"cannot ask the hub at {url} whose the credential is: "):
        run_async(HubIdentity(url).verify, "some-token")
