"""The project's Mosquitto: TLS with a local CA, one account per device, family member,
doctor and service, and an ACL that keeps each of them to its own topics
(`care-broker`)."""
