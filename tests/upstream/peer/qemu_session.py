"""Upstream client (inside `jmp shell`) on our QEMU board: power on with the console attached, expect `login:`."""

from jumpstarter.utils.env import env

with env() as client:
    with client.dut.serial.pexpect() as console:
        client.dut.power.on()
        console.expect("login:", timeout=120)
        print("console:", repr(console.before[-300:]))
