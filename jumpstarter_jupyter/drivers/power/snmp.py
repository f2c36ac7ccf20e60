"""``SnmpPower``: a PDU outlet (or a PoE port) switched over SNMP v2c or v3, through pysnmp.

Upstream's ``jumpstarter_driver_snmp.driver.SNMPServer`` resolves here with the same keys:
``on`` sets ``OID.PLUG`` to 1 and ``off`` to 0 (upstream's default OID is Raritan's
``switchingOperation``); ``state()`` reads the outlet back from the PDU. A ``preset`` names a
PDU family whose OIDs and values come from its published MIB (see ``PRESETS`` and
docs/drivers/power-switches.md); any other device takes explicit OIDs and values.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from jumpstarter_jupyter.driver import export, runtime
from jumpstarter_jupyter.drivers.power.driver import PowerInterface

RARITAN_SWITCHING = (
    "1.3.6.1.4.1.13742.6.4.1.2.1.2.1"  # upstream's default: PDU2-MIB switchingOperation, pduId 1
)


@dataclass(frozen=True)
class Preset:
    """OIDs (without the outlet number) and values of one PDU family, and where they are published."""

    oid: str
    on_value: int
    off_value: int
    state_oid: str
    state_on_value: int
    state_off_value: int
    source: str


PRESETS = {
    # PDU2-MIB (Raritan PX2/PX3): switchingOperation off(0)/on(1); outletSwitchingState on(7)/off(8)
    "raritan": Preset(
        RARITAN_SWITCHING,
        1,
        0,
        "1.3.6.1.4.1.13742.6.4.1.2.1.3.1",
        7,
        8,
        "Raritan PDU2-MIB outletSwitchControlTable; labgrid driver/power/raritan.py",
    ),
    # PowerNet-MIB rPDUOutletControlOutletCommand (APC AP7xxx switched rack PDUs): a get returns the state
    "apc": Preset(
        "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4",
        1,
        2,
        "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4",
        1,
        2,
        "APC PowerNet-MIB rPDUOutletControlOutletCommand",
    ),
    # PowerNet-MIB rPDU2OutletSwitchedControlCommand (APC AP8xxx, rPDU2 firmware)
    "apc-rpdu2": Preset(
        "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5",
        1,
        2,
        "1.3.6.1.4.1.318.1.1.26.9.2.4.1.5",
        1,
        2,
        "APC PowerNet-MIB rPDU2OutletSwitchedControlCommand",
    ),
    # PowerNet-MIB sPDUOutletCtl (APC MasterSwitch AP92xx/AP96xx)
    "apc-masterswitch": Preset(
        "1.3.6.1.4.1.318.1.1.4.4.2.1.3",
        1,
        2,
        "1.3.6.1.4.1.318.1.1.4.4.2.1.3",
        1,
        2,
        "APC PowerNet-MIB sPDUOutletCtl; labgrid driver/power/apc.py",
    ),
    # RFC 3621 POWER-ETHERNET-MIB pethPsePortAdminEnable, PSE group 1: TruthValue true(1)/false(2)
    "poe": Preset(
        "1.3.6.1.2.1.105.1.1.1.3.1",
        1,
        2,
        "1.3.6.1.2.1.105.1.1.1.3.1",
        1,
        2,
        "RFC 3621 POWER-ETHERNET-MIB pethPsePortAdminEnable; labgrid driver/power/poe_mib.py",
    ),
}

AUTH_PROTOCOLS = {
    "NONE": "USM_AUTH_NONE",
    "MD5": "USM_AUTH_HMAC96_MD5",
    "SHA": "USM_AUTH_HMAC96_SHA",
    "SHA224": "USM_AUTH_HMAC128_SHA224",
    "SHA256": "USM_AUTH_HMAC192_SHA256",
    "SHA384": "USM_AUTH_HMAC256_SHA384",
    "SHA512": "USM_AUTH_HMAC384_SHA512",
}
PRIV_PROTOCOLS = {
    "NONE": "USM_PRIV_NONE",
    "DES": "USM_PRIV_CBC56_DES",
    "3DES": "USM_PRIV_CBC168_3DES",
    "AES": "USM_PRIV_CFB128_AES",
    "AES192": "USM_PRIV_CFB192_AES",
    "AES256": "USM_PRIV_CFB256_AES",
}
RETRIES = 1  # one resend inside `timeout`: a lost UDP datagram is not a dead PDU


@dataclass(kw_only=True)
class SnmpPower(PowerInterface):
    """One outlet (``plug``) of a PDU at ``host:port``, over SNMP v2c (``community``) or v3 (``user``).

    v3 takes ``auth_protocol`` (NONE, MD5, SHA, SHA224-SHA512) with ``auth_key`` and
    ``priv_protocol`` (NONE, DES, 3DES, AES, AES192, AES256) with ``priv_key``. ``timeout`` is
    seconds per request; the host is resolved once, at the first request. ``preset`` (one of
    ``PRESETS``) fills the OIDs and values; otherwise ``oid`` (default: upstream's, Raritan's
    switchingOperation) is set to ``on_value`` (1) or ``off_value`` (0), and ``state_oid``
    (default: ``oid``) reads back ``state_on_value`` / ``state_off_value`` (default: the values set).
    """

    host: str
    plug: int
    port: int = 161
    community: str | None = None
    user: str | None = None
    auth_protocol: str = "NONE"
    auth_key: str | None = None
    priv_protocol: str = "NONE"
    priv_key: str | None = None
    timeout: float = 5.0
    preset: str | None = None
    oid: str | None = None
    on_value: int | None = None
    off_value: int | None = None
    state_oid: str | None = None
    state_on_value: int | None = None
    state_off_value: int | None = None
    _session: tuple | None = runtime(None)  # (engine, credentials, target), made at the first request

    def __post_init__(self) -> None:
        _hlapi()  # a missing pysnmp stops the exporter at start, not at the first click
        self._check_credentials()
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        preset = self._preset()
        self.oid = _oid(self.oid or (preset.oid if preset else RARITAN_SWITCHING), "oid")
        self.on_value = _pick(self.on_value, preset.on_value if preset else 1)  # upstream's values
        self.off_value = _pick(self.off_value, preset.off_value if preset else 0)
        # without a preset, state() reads back what on() and off() set
        self.state_oid = _oid(self.state_oid or (preset.state_oid if preset else self.oid), "state_oid")
        self.state_on_value = _pick(self.state_on_value, preset.state_on_value if preset else self.on_value)
        self.state_off_value = _pick(
            self.state_off_value, preset.state_off_value if preset else self.off_value
        )

    @property
    def device(self) -> str:
        """Which outlet of which PDU, for messages."""
        return f"PDU {self.host}:{self.port} outlet {self.plug}"

    @export
    async def on(self) -> None:
        """Switch the outlet on."""
        await self._set(self.on_value)
        self.logger.info("%s on", self.device)

    @export
    async def off(self) -> None:
        """Switch the outlet off."""
        await self._set(self.off_value)
        self.logger.info("%s off", self.device)

    @export
    async def state(self) -> bool:
        """True while the outlet is on, as the PDU reports it."""
        value = await self._get(f"{self.state_oid}.{self.plug}")
        if value == self.state_on_value:
            return True
        if value == self.state_off_value:
            return False
        raise ValueError(
            f"{self.device}: {self.state_oid}.{self.plug} = {value}, neither on "
            f"({self.state_on_value}) nor off ({self.state_off_value}); check the preset or state values"
        )

    def teardown(self) -> None:
        if self._session is not None:
            self._session[0].close_dispatcher()
        super().teardown()

    async def _set(self, value: int) -> None:
        hlapi = _hlapi()
        oid = f"{self.oid}.{self.plug}"
        status, _ = await self._request(hlapi.set_cmd, oid, hlapi.Integer(value))
        if status:
            await self._refused(oid, f"setting it to {value}", status.prettyPrint())

    async def _get(self, oid: str) -> int:
        status, bindings = await self._request(_hlapi().get_cmd, oid)
        if status:
            raise PermissionError(f"{self.device}: reading {oid} was refused: {status.prettyPrint()}")
        value = bindings[0][1]
        if _missing(value):
            raise LookupError(f"{self.device} does not exist: the PDU has no object {oid}")
        return int(value)

    async def _refused(self, oid: str, what: str, status: str) -> None:
        """Say why a set failed: an outlet that does not exist, else the agent's reason."""
        _, bindings = await self._request(_hlapi().get_cmd, oid)
        if bindings and _missing(bindings[0][1]):
            raise LookupError(f"{self.device} does not exist: the PDU has no object {oid}")
        hint = {
            "noAccess": " (a read-only community or user?)",
            "notWritable": " (is oid the outlets' control column?)",
            "wrongValue": " (check on_value and off_value)",
        }.get(status, "")
        raise PermissionError(f"{self.device}: the PDU refused {what} ({oid}): {status}{hint}")

    async def _request(self, command: Any, oid: str, *value: Any) -> tuple[Any, Any]:
        """One request: (error status, var-binds); no answer and wrong credentials raise."""
        hlapi = _hlapi()
        if self._session is None:  # made once: an engine, and v3 keys derived from the passphrases, cost ms
            self._session = (hlapi.SnmpEngine(), self._credentials(), await self._target())
        engine, credentials, target = self._session
        call = command(
            engine,
            credentials,
            target,
            hlapi.ContextData(),
            hlapi.ObjectType(hlapi.ObjectIdentity(oid), *value),
            lookupMib=False,
        )
        try:  # pysnmp times out by itself; the outer bound only guards against a stuck dispatcher
            indication, status, _, bindings = await asyncio.wait_for(call, self.timeout + 1)
        except TimeoutError:
            raise self._failure("RequestTimedOut", "") from None
        if indication:
            raise self._failure(type(indication).__name__, str(indication))
        return status, bindings

    async def _target(self) -> Any:
        from pysnmp.error import PySnmpError

        try:
            return await _hlapi().UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout / (RETRIES + 1), retries=RETRIES
            )
        except PySnmpError as exc:  # pysnmp wraps the resolver's gaierror in its own error
            raise ConnectionError(f"{self.device}: cannot resolve host {self.host!r}: {exc}") from None

    def _failure(self, kind: str, text: str) -> Exception:
        """The exception for a pysnmp error indication, naming the PDU and what failed."""
        if kind == "RequestTimedOut":
            suspect = (
                "wrong community, or "
                if self.community
                else "wrong privacy key, or "
                if self.priv_key
                else ""
            )
            return TimeoutError(
                f"{self.device}: no answer ({suspect}the PDU is unreachable) within {self.timeout:g} s"
            )
        if kind == "WrongDigest":
            return PermissionError(
                f"{self.device}: wrong credentials: the PDU rejected the authentication key "
                f"of user {self.user!r} ({text})"
            )
        if kind == "UnknownUserName":
            return PermissionError(
                f"{self.device}: wrong credentials: the PDU has no SNMPv3 user {self.user!r}"
            )
        if kind in (
            "UnsupportedSecurityLevel",
            "DecryptionError",
            "AuthenticationFailure",
            "NotInTimeWindow",
        ):
            return PermissionError(f"{self.device}: wrong credentials for user {self.user!r}: {text}")
        return ConnectionError(f"{self.device}: SNMP request failed: {text}")

    def _credentials(self) -> Any:
        hlapi = _hlapi()
        if self.community is not None:
            return hlapi.CommunityData(self.community, mpModel=1)  # v2c
        return hlapi.UsmUserData(
            self.user,
            self.auth_key,
            self.priv_key,
            authProtocol=getattr(hlapi, AUTH_PROTOCOLS[self.auth_protocol]),
            privProtocol=getattr(hlapi, PRIV_PROTOCOLS[self.priv_protocol]),
        )

    def _check_credentials(self) -> None:
        if (self.community is None) == (self.user is None):
            raise ValueError(
                "give `community` (SNMP v2c) or `user` (SNMP v3), not "
                + ("both" if self.community is not None else "neither")
            )
        self.auth_protocol, self.priv_protocol = self.auth_protocol.upper(), self.priv_protocol.upper()
        for key, value, choices in (
            ("auth_protocol", self.auth_protocol, AUTH_PROTOCOLS),
            ("priv_protocol", self.priv_protocol, PRIV_PROTOCOLS),
        ):
            if value not in choices:
                raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        if self.auth_protocol != "NONE" and not self.auth_key:
            raise ValueError(f"auth_protocol {self.auth_protocol} needs auth_key")
        if self.priv_protocol != "NONE" and not (self.priv_key and self.auth_protocol != "NONE"):
            raise ValueError(
                f"priv_protocol {self.priv_protocol} needs priv_key and an auth_protocol (SNMPv3 "
                "has no privacy without authentication)"
            )
        if self.community is not None and (self.auth_protocol != "NONE" or self.priv_protocol != "NONE"):
            raise ValueError(
                "auth_protocol and priv_protocol are SNMP v3 settings: give `user`, not `community`"
            )

    def _preset(self) -> Preset | None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(
                f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r} "
                "(or leave it out and give oid, on_value, off_value)"
            )
        return PRESETS.get(self.preset)


def _oid(text: str, key: str) -> str:
    oid = text.strip().lstrip(".")
    parts = oid.split(".")
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"{key} must be a numeric OID like 1.3.6.1.4.1.318..., got {text!r}")
    return oid


def _pick(value: int | None, default: int) -> int:
    return default if value is None else int(value)


def _missing(value: Any) -> bool:
    """True for the agent's "no such object/instance" answers."""
    hlapi = _hlapi()
    return isinstance(value, (hlapi.NoSuchInstance, hlapi.NoSuchObject, hlapi.EndOfMibView))


def _hlapi() -> Any:
    try:
        import pysnmp.hlapi.v3arch.asyncio as hlapi
    except ImportError:
        raise ValueError("SnmpPower needs pysnmp: pip install 'jumpstarter-jupyter[snmp]'") from None
    return hlapi
