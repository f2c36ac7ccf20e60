"""CAN buses: the python-can driver, its BusABC client and the ``can`` commands."""
