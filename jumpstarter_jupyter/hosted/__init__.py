"""Upstream Jumpstarter's driver packages in our exporter: hosted in an upstream exporter process.

Upstream's generated stubs register the same protobuf names as ours, so its drivers cannot run
in our interpreter. An entry naming an upstream driver (``jumpstarter_driver_shell.driver.Shell``)
is served by an upstream exporter process that ours starts, supervises and calls over a private
unix socket; the client sees one tree (``config`` decides what runs hosted, ``process`` runs
it, ``drivers`` makes the drivers standing for it, ``child`` is what the process runs).
"""
