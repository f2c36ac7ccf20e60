"""The names both ends of the wire agree on: report labels and gRPC metadata keys.

The exporter writes them and the client reads them, so each is defined here once. The
``jumpstarter.dev/...`` labels and ``x-jumpstarter-passphrase`` are upstream Jumpstarter's
(upstream peers read and write them too); the ``jumpstarter-jupyter.dev/...`` labels and the
``x-jmp-...`` keys are ours, and upstream peers ignore them.
"""

# Labels of each GetReport entry
CLIENT_LABEL = "jumpstarter.dev/client"  # the client class upstream's client imports
NAME_LABEL = "jumpstarter.dev/name"  # the driver's name under its parent
OUR_CLIENT_LABEL = "jumpstarter-jupyter.dev/client"  # our client class (present: the exporter is ours)
METHODS_LABEL = "jumpstarter-jupyter.dev/methods"  # JSON: the exported methods' descriptions
TYPE_LABEL = "jumpstarter-jupyter.dev/type"  # the driver class, for people reading a report
HOSTED_LABEL = (
    "jumpstarter-jupyter.dev/hosted"  # the upstream type a hosted driver runs (jumpstarter_jupyter.hosted)
)
FAILED_LABEL = "jumpstarter-jupyter.dev/failed"  # why a driver's device could not be opened at start

# Invocation metadata a client sends
PASSPHRASE_KEY = "x-jumpstarter-passphrase"  # the exporter's passphrase, or a lease token
LEASE_KEY = "x-jmp-lease"  # the token of the lease a call runs under
REQUEST_KEY = "request"  # RouterService.Stream: JSON {"kind": "driver"|"resource", "uuid": ...}
CONTENT_ENCODING_KEY = "x_jmp_content_encoding"  # in a resource request and handle: its compression
# a resource stream's request "1": offer me a bulk connection; the answer's JSON offer
# {"port"|"path": ..., "token": HEX} (protocol/bulk.py)
BULK_KEY = "x-jmp-bulk"

# Metadata the exporter answers with
RESOURCE_KEY = "resource"  # initial metadata of a resource stream: JSON handle of the channel
ACCEPT_ENCODING_KEY = "x_jmp_accept_encoding"  # initial metadata: the encoding the exporter took
EXCEPTION_KEY = "x-jmp-exception"  # trailing metadata of a refused call: the exception type
PATH_KEY = "x-jmp-path"  # trailing metadata of a refused call: the driver's path

# The event of a ConsoleService.Follow chunk when the offsets a client asked from belong to an
# earlier run of the exporter
CONSOLE_RESTARTED = "exporter restarted: the console starts over at offset 0"

UNKNOWN_DRIVER = "UnknownDriver"  # the exception type of a call naming a UUID the exporter does not know
