"""``%load_ext jumpstarter``: forwards the IPython extension hooks to ``jumpstarter_jupyter``.

A single module, not a package, so it never overwrites upstream Jumpstarter's ``jumpstarter``
package. Where upstream is installed in the same environment, use
``%load_ext jumpstarter_jupyter`` instead.
"""


def load_ipython_extension(ipython):
    from jumpstarter_jupyter.jupyter.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from jumpstarter_jupyter.jupyter.extension import unload_ipython_extension as unload

    unload(ipython)
