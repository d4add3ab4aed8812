"""CMPP 2.0/3.0, China Mobile's SP-to-ISMG protocol: the pure codec (``sms.cmpp.codec``).

The Twisted Protocol and the link come later, on the shared link pieces.
"""
