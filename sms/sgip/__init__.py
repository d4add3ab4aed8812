"""SGIP 1.2, China Unicom's SP-SMG protocol: the pure codec (``codec``), the Twisted Protocol
for both directions (``protocol``), the link and the listener the SMG connects back to
(``link``)."""
