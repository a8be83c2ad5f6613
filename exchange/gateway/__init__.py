"""The device gateway: MQTT in, the hub's published datasets out (``waterhub gateway``).

Modules: ``topics`` (the topic layout), ``registry`` (devices, credentials, offline detection), ``mapping`` (a
message → contract rows, quarantine entries and protocol replies), ``writer`` (one micro-batch, one transaction),
``service`` (the MQTT loop with manual acknowledgements), ``settings``.
"""

__all__: list[str] = []
