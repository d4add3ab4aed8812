"""SMGP 3.0, China Telecom's SP-to-SMGW protocol: the pure codec (``codec``), the Twisted
Protocol (``protocol``) and the link with its login (``link``)."""
