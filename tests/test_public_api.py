"""The package root's public names are deliberate: adding or removing one changes this test."""

import jumpstarter_jupyter

PUBLIC = {
    "AuthenticationFailed",
    "ConfigError",
    "ConnectionFailed",
    "DriverError",
    "DriverInvalidArgument",
    "DriverMethodNotFound",
    "DriverNotImplemented",
    "DriverTimeout",
    "JumpstarterError",
    "LeaseRequired",
    "LeaseTimeout",
    "LeaseUnsatisfiable",
    "__version__",
    "connect",
}


def test_public_names_are_exactly_the_documented_ones():
    assert set(jumpstarter_jupyter.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(jumpstarter_jupyter, name) is not None


def test_errors_also_inherit_the_builtin_they_stand_for():
    assert issubclass(jumpstarter_jupyter.DriverInvalidArgument, ValueError)
    assert issubclass(jumpstarter_jupyter.DriverTimeout, TimeoutError)
    assert issubclass(jumpstarter_jupyter.LeaseRequired, PermissionError)
    assert issubclass(jumpstarter_jupyter.LeaseTimeout, TimeoutError)
    assert issubclass(jumpstarter_jupyter.LeaseUnsatisfiable, LookupError)
    assert issubclass(jumpstarter_jupyter.DriverMethodNotFound, AttributeError)
    assert issubclass(jumpstarter_jupyter.ConnectionFailed, ConnectionError)
    assert issubclass(jumpstarter_jupyter.ConfigError, ValueError)


def test_public_functions_have_docstrings():
    assert jumpstarter_jupyter.connect.__doc__
    for name in PUBLIC - {"__version__"}:
        assert getattr(jumpstarter_jupyter, name).__doc__, name
