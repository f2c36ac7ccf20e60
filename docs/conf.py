"""Sphinx configuration: MyST Markdown pages, rendered notebooks, the pydata theme.

`make docs` builds with warnings as errors and nitpicky cross-references, without network:
other projects' names resolve through the inventories in _inventories/ (see
scripts/docs_inventories.sh), and the names of projects without one are ignored on purpose below.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "jumpstarter-jupyter"
author = "the jumpstarter-jupyter authors"
copyright = "the jumpstarter-jupyter authors"  # no year: nothing on the site goes stale by date

extensions = [
    "myst_nb",  # MyST Markdown pages and executed notebooks (it loads myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings' "Args:" sections
    "sphinx.ext.intersphinx",
    "figures",  # _ext/figures.py: bench, soak, config-keys and client-methods tables
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_data", "_inventories", "**/.ipynb_checkpoints"]

# MyST
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Notebooks: scripts/execute_notebooks.py stores executed copies; the build never runs a kernel
nb_execution_mode = "off"
nb_output_stderr = "remove"

# autodoc
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"  # clients and exporters are built for you: no constructor line
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Cross-references: every one must resolve (nitpicky + -W)
nitpicky = True
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", str(HERE / "_inventories" / "python.inv")),
    "can": ("https://python-can.readthedocs.io/en/4.1.0/", str(HERE / "_inventories" / "python-can.inv")),
    "click": ("https://click.palletsprojects.com/en/8.1.x/", str(HERE / "_inventories" / "click.inv")),
    "traitlets": ("https://traitlets.readthedocs.io/en/5.5.0/", str(HERE / "_inventories" / "traitlets.inv")),
}
# Projects whose inventory Debian does not ship (grpc, protobuf, anywidget...) or ships for a far
# older release (ipywidgets 6): their names in signatures stay plain text, on purpose.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(grpc|google\.protobuf|ipywidgets|anywidget|matplotlib|pexpect|serial|cantools|zstandard|"
        r"gpiod|yaml|pytest|_pytest|PIL)(\..*)?",
    ),
    (r"py:.*", r".*_pb2(_grpc)?\..*"),  # generated gRPC stubs: not part of the documented API
    ("py:class", "can.bus.CanProtocol"),  # newer than the python-can inventory Debian ships (4.1)
    (r"py:class", r"asyncio\.streams\.Stream(Reader|Writer)"),  # documented as asyncio.Stream*: same classes
    # the runtime's internals that public signatures mention; documented in their modules, not here
    (
        r"py:class",
        r"jumpstarter_jupyter\.(client\.connection\.Connection|exporter\.(report\.Tree|logs\.LogHub|"
        r"leases\.Leases|calls\.Calls|controller\.ControllerLink|bulk\.BulkListener)|driver\.resources\.Channel)",
    ),
    (r"py:class", r"jumpstarter_jupyter\..*\._\w+"),  # private bases (a public class's show-inheritance)
    # the screen client's hints as written (PIL's Image, pathlib's Path, its region and frame types)
    (
        r"py:class",
        r"Image|Path|Region|re\.(Match|Pattern)|jumpstarter_jupyter\.drivers\.screen\.common\.Frame",
    ),
]

# HTML
html_theme = "pydata_sphinx_theme"
html_title = "jumpstarter-jupyter"
html_static_path = ["_static"]
html_last_updated_fmt = None
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 7,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {page: [] for page in ("index", "changelog", "performance", "reliability")}  # room for tables
