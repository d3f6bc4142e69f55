"""What members read, in their language. Emergencies are short and urgent; wellness
concerns are calm and say first that it is not an emergency."""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "de")

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "emergency.voice": "URGENT: {senior} asked for help{said}. Please answer now.",
        "emergency.sos_button": "URGENT: {senior} pressed the SOS button. Please answer now.",
        "emergency.fall_detected": "URGENT: a fall was detected at {senior}'s. Please answer now.",
        "emergency.no_answer": "URGENT: {senior} did not answer an emergency check. "
        "Please answer now.",
        "missed_medication": "{senior} has not taken {medication} (due {due}).",
        "taken_late": "All is well: {senior} has taken {medication} after all (due {due}).",
        "wellness.feeling": "No emergency: {senior} said they feel {detail}. "
        "A call would do them good.",
        "wellness.check_in": "No emergency: {senior} did not answer today's check-in. "
        "Maybe give them a call.",
        "wellness.health_reading": "No emergency: {senior}'s last reading looks unusual. "
        "You may want to ask how they are.",
        "wellness.other": "No emergency: {senior} may like to hear from you{detail_suffix}.",
        "wellness.device": "{senior}'s care assistant found part of its memory damaged and "
        "started afresh. It lost {lost}.{then}",
        "wellness.storage": "{senior}'s care assistant can no longer save to its storage (it "
        "is full or failing). It keeps working, but some of what it keeps may be missing, and "
        "reminders and messages from now on are lost if it restarts. Please have it checked "
        "soon.",
        "wellness.not_restored": "{senior}'s care assistant lost its reminders and did not "
        "take back {what} when the family app's reminders were sent to it again. Please set "
        "them up again.",
        "device.check": " Please call {senior} to make sure they do not need help.",
        "device.reminders": " The reminders set up from the family app are being sent to it "
        "again; any {senior} set up by voice need to be set up again.",
        "lost.reminders": "its reminders",
        "lost.outbox": "messages it had not sent yet",
        "lost.unanswered_alerts": "calls for help still waiting for an answer",
        "lost.unconfirmed_alerts": "alerts not yet confirmed as received",
        "lost.emergency_check": "an emergency question it had asked",
        "lost.unknown": "some of what it kept",
        "and": "and",
        "inactivity": "No emergency: {senior} has been quiet for {hours} hours. Maybe check in.",
        "message": 'Message from {senior}{for_whom}: "{message}"',
        "escalated": "Still no answer about {senior}: now also contacting {what}.",
        "repeated": "{senior} called for help again, and nobody has answered yet. {alert}",
        "acknowledged.seen": "{by} has seen the alert about {senior}.",
        "acknowledged.calling": "{by} is calling {senior}.",
        "acknowledged.on_the_way": "{by} is on the way to {senior}{eta}.",
        "acknowledged.resolved": "{by} has dealt with the alert about {senior}.",
        "eta": " (about {minutes} min)",
        "what.contacts": "the family's phones",
        "what.emergency": "the emergency number",
        "call": "Automated call from the care assistant: {senior} needs help and no family "
        "member has answered for {minutes} minutes.",
        "digest.taken": "Took {what} ({due}).",
        "digest.missed": "Missed {what} ({due}).",
        "digest.removed": "Stopped the reminder for {what} by voice.",
        "digest.reading": "Reading: {measure} {value}.",
        "digest.alert": "Alert: {category}, {state}.",
        "digest.none": "A quiet day: nothing to report.",
        "location": " Position: {lat:.5f}, {lon:.5f}{accuracy} {map}",
        "accuracy": " (within {meters} m)",
    },
    "de": {
        "emergency.voice": "DRINGEND: {senior} hat um Hilfe gerufen{said}. Bitte sofort antworten.",
        "emergency.sos_button": "DRINGEND: {senior} hat den SOS-Knopf gedrückt. "
        "Bitte sofort antworten.",
        "emergency.fall_detected": "DRINGEND: Bei {senior} wurde ein Sturz erkannt. "
        "Bitte sofort antworten.",
        "emergency.no_answer": "DRINGEND: {senior} hat auf eine Notfallfrage nicht geantwortet. "
        "Bitte sofort antworten.",
        "missed_medication": "{senior} hat {medication} nicht genommen (fällig {due}).",
        "taken_late": "Alles gut: {senior} hat {medication} doch genommen (fällig {due}).",
        "wellness.feeling": "Kein Notfall: {senior} fühlt sich {detail}. Ein Anruf würde guttun.",
        "wellness.check_in": "Kein Notfall: {senior} hat heute nicht auf die Nachfrage "
        "geantwortet. Vielleicht kurz anrufen.",
        "wellness.health_reading": "Kein Notfall: Der letzte Messwert von {senior} ist "
        "ungewöhnlich. Fragen Sie ruhig nach.",
        "wellness.other": "Kein Notfall: {senior} würde sich über einen Anruf freuen"
        "{detail_suffix}.",
        "wellness.device": "Der Pflegeassistent von {senior} hat einen Teil seines Speichers "
        "beschädigt vorgefunden und neu begonnen. Verloren: {lost}.{then}",
        "wellness.storage": "Der Pflegeassistent von {senior} kann nichts mehr speichern (der "
        "Speicher ist voll oder defekt). Er arbeitet weiter, aber manches Gespeicherte kann "
        "fehlen, und Erinnerungen und Nachrichten von jetzt an gehen bei einem Neustart "
        "verloren. Bitte lassen Sie ihn bald prüfen.",
        "device.check": " Bitte rufen Sie {senior} an, um sicherzugehen, dass keine Hilfe "
        "nötig ist.",
        "wellness.not_restored": "Der Pflegeassistent von {senior} hat seine Erinnerungen "
        "verloren und {what} nicht wieder übernommen, als ihm die Erinnerungen aus der "
        "Familien-App erneut gesendet wurden. Bitte richten Sie sie neu ein.",
        "device.reminders": " Die in der Familien-App eingerichteten Erinnerungen werden ihm "
        "erneut gesendet; solche, die {senior} per Sprache eingerichtet hat, bitte neu einrichten.",
        "lost.reminders": "seine Erinnerungen",
        "lost.outbox": "noch nicht gesendete Nachrichten",
        "lost.unanswered_alerts": "noch unbeantwortete Hilferufe",
        "lost.unconfirmed_alerts": "noch nicht bestätigte Meldungen",
        "lost.emergency_check": "eine offene Notfallfrage",
        "lost.unknown": "ein Teil seiner Daten",
        "and": "und",
        "message": 'Nachricht von {senior}{for_whom}: "{message}"',
        "inactivity": "Kein Notfall: Von {senior} kam seit {hours} Stunden nichts. "
        "Vielleicht kurz nachfragen.",
        "escalated": "Noch keine Antwort wegen {senior}: jetzt wird auch {what} verständigt.",
        "repeated": "{senior} hat noch einmal um Hilfe gerufen, und niemand hat bisher "
        "geantwortet. {alert}",
        "acknowledged.seen": "{by} hat die Meldung zu {senior} gesehen.",
        "acknowledged.calling": "{by} ruft {senior} an.",
        "acknowledged.on_the_way": "{by} ist auf dem Weg zu {senior}{eta}.",
        "acknowledged.resolved": "{by} hat sich um die Meldung zu {senior} gekümmert.",
        "eta": " (etwa {minutes} Min.)",
        "what.contacts": "die Telefone der Familie",
        "what.emergency": "die Notrufnummer",
        "call": "Automatischer Anruf des Pflegeassistenten: {senior} braucht Hilfe, und seit "
        "{minutes} Minuten hat niemand aus der Familie geantwortet.",
        "digest.taken": "{what} genommen ({due}).",
        "digest.missed": "{what} verpasst ({due}).",
        "digest.removed": "Erinnerung an {what} per Sprache beendet.",
        "digest.reading": "Messwert: {measure} {value}.",
        "digest.alert": "Meldung: {category}, {state}.",
        "digest.none": "Ein ruhiger Tag: nichts zu berichten.",
        "location": " Standort: {lat:.5f}, {lon:.5f}{accuracy} {map}",
        "accuracy": " (auf {meters} m genau)",
    },
}


def text(language: str, key: str, **values: Any) -> str:
    """The sentence `key` in `language` (English when the language lacks it)."""
    table = _TEXTS.get(language, _TEXTS["en"])
    template = table.get(key) or _TEXTS["en"][key]
    return template.format(**values)


MAP_URL = "https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}#map=17/{lat:.5f}/{lon:.5f}"


def where(location: Any, language: str) -> str:
    """ " Position: 52.52000, 13.40500 (within 8 m) <map link>" for an alert's location;
    empty without one."""
    if location is None:
        return ""
    accuracy = ""
    if location.accuracy_m is not None:
        accuracy = text(language, "accuracy", meters=round(location.accuracy_m))
    link = MAP_URL.format(lat=location.lat, lon=location.lon)
    return text(language, "location", lat=location.lat, lon=location.lon, accuracy=accuracy,
                map=link)  # fmt: skip
