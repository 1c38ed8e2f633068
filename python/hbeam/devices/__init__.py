"""Built-in devices, one module per device (``message@1.0`` → :mod:`hbeam.devices.message`).

Devices are loaded lazily by name through :mod:`hbeam.device`; importing this package
imports none of them.
"""
