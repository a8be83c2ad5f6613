"""Simulated telemetry devices: real SL 651, HJ 212 and JSON messages over a real broker, with known truth."""

from connectors.devices.simulator import DeviceSimulator, SimulatedDevice, SimulatedMessage, publish_messages

__all__ = ["DeviceSimulator", "SimulatedDevice", "SimulatedMessage", "publish_messages"]
