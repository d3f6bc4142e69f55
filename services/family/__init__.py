"""The family-notification service (`family-notify`): households, alert routing and
escalation, caregivers' reminder commands, daily digests. See `services.family.service`."""
