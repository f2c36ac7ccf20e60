"""Upstream's own encoding of CAN values: ``python can_encoding.py`` prints them as JSON.

One line per value: what ``_recv_internal`` returns for a frame, and for no frame.
"""

import json

import can
from google.protobuf import json_format
from jumpstarter.common.serde import encode_value
from jumpstarter_driver_can.common import CanMessage

frame = can.Message(
    timestamp=1.5, arbitration_id=0x123, is_extended_id=False, data=b"\xde\xad\xbe\xef", channel="interop"
)
for value in ((CanMessage.construct(frame), False), (None, False)):
    print(json.dumps(json_format.MessageToDict(encode_value(value))))
