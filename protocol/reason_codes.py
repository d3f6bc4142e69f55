"""MQTT 5 reason codes the device and the services read in a PUBACK."""

# A success to MQTT, not to us: the broker had nobody to pass the message to and dropped
# it (a service restarting, a family app that never connected or whose session expired).
NO_MATCHING_SUBSCRIBERS = 0x10

DELIVERED, NO_SUBSCRIBER, REFUSED = "delivered", "no_subscriber", "refused"


def puback_outcome(reason_code: object) -> str:
    """What a PUBACK says became of a message: DELIVERED (to at least one subscriber),
    NO_SUBSCRIBER (accepted, then dropped: nobody to pass it to) or REFUSED (0x80 and up).
    `reason_code`: paho's ReasonCode (its `value` and `is_failure`)."""
    if getattr(reason_code, "value", None) == NO_MATCHING_SUBSCRIBERS:
        return NO_SUBSCRIBER
    return REFUSED if getattr(reason_code, "is_failure", False) else DELIVERED
