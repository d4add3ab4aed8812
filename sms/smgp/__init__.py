"""SMGP 3.0, China Telecom's SP-to-SMGW protocol: the pure codec (``sms.smgp.codec``)."""
