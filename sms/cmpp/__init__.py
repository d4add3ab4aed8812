"""CMPP 2.0/3.0, China Mobile's SP-to-ISMG protocol: the pure codec (``codec``), the
Twisted Protocol (``protocol``) and the link with its login (``link``)."""
