"""The wire: generated stubs (``protocol.v1``) and the value codec (``protocol.codec``)."""
