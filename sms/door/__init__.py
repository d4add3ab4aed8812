"""The province's SMS door: outside systems (city centers' business systems, other channels)
send through the platform by REST or SMPP, filtered, counted and called back."""
