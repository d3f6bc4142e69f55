"""The backends that talk to devices over MQTT, each its own process and console script.

They depend on `protocol` only; `services.mqtt_service` is the MQTT plumbing they share.
"""
