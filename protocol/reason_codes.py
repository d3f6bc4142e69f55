"""MQTT 5 reason codes the device and the services read in a PUBACK."""

# A success to MQTT, not to us: the broker had nobody to pass the message to and dropped
# it (a service restarting, a family app that never connected or whose session expired).
NO_MATCHING_SUBSCRIBERS = 0x10
