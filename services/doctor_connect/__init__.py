"""The doctor-connect backend: consultation requests from devices matched to doctors.

`doctor-connect serve` runs it (services/doctor_connect/cli.py); the modules, one job each:
departments and triage, working hours, the roster, the matcher (queues, positions, wait
estimates), sessions, appointments, the SQLite store, the engine that ties them together and
the MQTT service around it.
"""
