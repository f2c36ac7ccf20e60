"""The sdist and the wheel as a user gets them, and the wheel installed in a fresh venv."""

from __future__ import annotations

import re
import tarfile

LABEXTENSION = "share/jupyter/labextensions/jumpstarter-jupyter"
WIDGETS = {"debugger", "generic", "gpio", "network", "power", "screen", "serial", "storage"}


def test_sdist_holds_the_front_end_sources_and_lock_not_their_build(dist):
    with tarfile.open(dist.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {
        "labextension/package.json",
        "labextension/package-lock.json",
        "labextension/build.mjs",
        "labextension/src/index.js",
        "labextension/src/loader.js",
        "LICENSE",
    } <= names
    assert {f"labextension/src/widgets/{name}.js" for name in WIDGETS} <= names
    assert not [
        n
        for n in names
        if n.startswith(
            ("labextension/node_modules", "labextension/dist", "jumpstarter_jupyter/jupyter/static")
        )
    ]


def test_wheel_ships_loaders_front_ends_and_the_prebuilt_extension(dist):
    files = dist.wheel_files()
    front_ends = sorted(f for f in files if f.endswith(".js") or "labextensions" in f)
    print("\n".join(["wheel front-end files:", *front_ends]))  # the report's list (pytest -s)
    static = "jumpstarter_jupyter/jupyter/static"
    assert {f"{static}/loaders/{name}.js" for name in WIDGETS} <= set(files)
    assert {f"{static}/widgets/{name}.js" for name in WIDGETS} <= set(files)
    data = next(f.split("/")[0] for f in files if ".data/" in f)
    extension = [f.removeprefix(f"{data}/data/") for f in files if f"/{LABEXTENSION}/" in f]
    assert {f"{LABEXTENSION}/package.json", f"{LABEXTENSION}/install.json"} <= set(extension)
    assert [f for f in extension if re.fullmatch(rf"{LABEXTENSION}/static/remoteEntry\.\w+\.js", f)]
    assert [f for f in files if f.endswith(".dist-info/licenses/LICENSE")]
    assert not [f for f in files if f.startswith("tests/")]


def test_extension_is_listed_enabled(installed, tmp_path):
    env = {"JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    listing = installed.run("jupyter", "labextension", "list", env=env)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"jumpstarter-jupyter v0\.1\.0 enabled OK \(python, jumpstarter-jupyter\)", text), text


def test_installed_stubs_load_with_the_newest_allowed_grpcio_and_protobuf(installed):
    versions = installed.run("python", "-c", STUB_CHECK).stdout.split()
    assert versions[0] == "loaded" and versions[2].startswith("7."), versions  # protobuf 7 runs 6.30 gencode


# imports every generated stub (the gencode's runtime checks run at import) and reports the versions
STUB_CHECK = """
import importlib, pkgutil, grpc, google.protobuf
import jumpstarter_jupyter.protocol.v1 as v1
import jumpstarter_jupyter.protocol.client.v1 as client_v1  # imports googleapis-common-protos' google.api
assert "site-packages" in v1.__file__, v1.__file__  # the installed package, not a source tree
for package in (v1, client_v1):
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
print("loaded", grpc.__version__, google.protobuf.__version__)
"""
