"""SGIP 1.2, China Unicom's SP-SMG protocol: the pure codec (``sms.sgip.codec``)."""
