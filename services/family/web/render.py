"""The console's pages as HTML (escaped here, nowhere else) and its charts as inline SVG.

Sections that change while a page is open carry `data-live` and an id; the page's script
swaps them for fresh ones when the server says something changed (forms are outside them,
so nothing being typed is lost)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from html import escape
from typing import Any

from services.family import reminders
from services.family.households import Household, Member
from services.family.web.data import Day, Reading, local_time

NAV = (("/", "Alerts"), ("/reminders", "Reminders"), ("/health", "Health and device"))
CATEGORY = {
    "emergency": "Emergency",
    "missed_medication": "Missed medication",
    "wellness": "Wellbeing",
    "inactivity": "No activity",
    "message": "Message",
}
STATE = {
    "open": "Open",
    "delivered": "Open (sent to the family)",
    "escalated": "Open, escalated",
    "acknowledged": "Acknowledged",
    "closed": "Closed",
}
ACK_BUTTONS = (
    ("seen", "I have seen it"),
    ("calling", "I am calling"),
    ("on_the_way", "I am on my way"),
    ("resolved", "It is resolved"),
)
MEASURES = {
    "blood_pressure": ("Blood pressure", "mmHg"),
    "blood_sugar": ("Blood sugar", "mg/dL"),
    "heart_rate": ("Heart rate", "bpm"),
    "weight": ("Weight", "kg"),
    "temperature": ("Temperature", "°C"),
    "oxygen": ("Oxygen saturation", "%"),
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KINDS = ("medication", "appointment", "check_in", "other")
NOTICES = {
    "acknowledged": "Thank you. Your answer was sent; the device tells the senior.",
    "answered": "Someone had already answered this alert; your answer was noted.",
    "added": "The reminder was sent to the device.",
    "changed": "The change was sent to the device.",
    "removed": "The reminder was removed from the device.",
    "signed_out": "You are signed out.",
}


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def page(
    title: str,
    body: str,
    *,
    member: Member | None = None,
    household: Household | None = None,
    csrf: str = "",
    current: str = "",
    large: bool = False,
    notice: str | None = None,
    error: str | None = None,
    state: str = "",
) -> str:
    header = ""
    if member is not None and household is not None:
        links = "".join(
            f'<a href="{href}"{" aria-current=page" if href == current else ""}>{e(label)}</a>'
            for href, label in NAV
        )
        header = (
            '<header class="top"><div class="who">'
            f'<span class="brand">Care for {e(household.senior)}</span>'
            f'<span class="member">Signed in as {e(member.name)}</span></div>'
            f'<nav aria-label="Main">{links}</nav>'
            '<div class="tools"><button type="button" id="large-text" aria-pressed='
            f'"{"true" if large else "false"}">Larger text</button>'
            f'<form method="post" action="/logout">{csrf_field(csrf)}'
            '<button type="submit">Sign out</button></form></div></header>'
        )
    else:
        header = '<header class="top"><div class="who"><span class="brand">Care console</span>'
        header += "</div></header>"
    messages = ""
    if notice:
        messages += f'<p class="notice" role="status">{e(notice)}</p>'
    if error:
        messages += f'<p class="error" role="alert">{e(error)}</p>'
    return (
        f'<!doctype html><html lang="en"{" class=large" if large else ""}><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, '
        'initial-scale=1"><title>' + e(title) + " · Care console</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        f'<script src="/static/app.js" defer></script></head><body data-state="{e(state)}">'
        '<a class="skip" href="#main">Skip to the content</a>'
        f'{header}<div id="live" class="live" role="status" aria-live="assertive"></div>'
        f'<main id="main" tabindex="-1"><h1>{e(title)}</h1>{messages}{body}</main>'
        "</body></html>"
    )


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(token)}">' if token else ""


def sign_in(csrf: str, household: str = "", member: str = "", error: str | None = None) -> str:
    body = (
        '<form method="post" action="/login" class="card signin">'
        f"{csrf_field(csrf)}"
        '<label for="household">Household</label>'
        f'<input id="household" name="household" value="{e(household)}" required '
        'autocomplete="organization" autocapitalize="none">'
        '<label for="member">Your name in the household (member id)</label>'
        f'<input id="member" name="member" value="{e(member)}" required autocomplete="username"'
        ' autocapitalize="none">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" required '
        'autocomplete="current-password">'
        '<button type="submit" class="primary">Sign in</button></form>'
    )
    return page("Sign in", body, error=error)


# --- alerts -------------------------------------------------------------------------------


def _when(ts: float | None, household: Household, fmt: str = "%a %d %b, %H:%M") -> str:
    if ts is None:
        return ""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return f'<time datetime="{stamp}">{e(local_time(ts, household, fmt))}</time>'


def alerts_page(
    open_alerts: list[dict], history: list[dict], household: Household, csrf: str
) -> str:
    if open_alerts:
        cards = "".join(_open_alert(a, household, csrf) for a in open_alerts)
    else:
        cards = '<p class="calm">No open alerts. All is quiet.</p>'
    rows = "".join(
        f"<tr><td>{_when(a['received'], household)}</td><td>{e(CATEGORY[a['category']])}</td>"
        f"<td>{e(STATE[a['state']])}{_by(a)}</td>"
        f'<td><a href="/alerts/{e(a["id"])}">Trail<span class="sr"> of the alert of '
        f"{e(local_time(a['received'], household))}</span></a></td></tr>"
        for a in history
    )
    table = (
        '<table><thead><tr><th scope="col">Raised</th><th scope="col">What</th>'
        f'<th scope="col">State</th><th scope="col">Trail</th></tr></thead><tbody>{rows}'
        "</tbody></table>"
        if history
        else "<p>No earlier alerts.</p>"
    )
    return (
        f'<section id="open-alerts" data-live aria-labelledby="open-h"><h2 id="open-h">Open '
        f"alerts ({len(open_alerts)})</h2>{cards}</section>"
        f'<section id="history" data-live aria-labelledby="hist-h"><h2 id="hist-h">History</h2>'
        f'<div class="scroll">{table}</div></section>'
    )


def _by(alert: dict) -> str:
    return f" by {e(alert['acked_by'])}" if alert["acked_by"] else ""


def _open_alert(alert: dict, household: Household, csrf: str) -> str:
    urgent = alert["category"] == "emergency"
    buttons = "".join(
        f'<button type="submit" name="action" value="{value}"'
        f"{' class=primary' if value == 'seen' else ''}>{e(label)}</button>"
        for value, label in ACK_BUTTONS
    )
    return (
        f'<article class="alert{" urgent" if urgent else ""}" data-alert="{e(alert["id"])}">'
        f"<h3>{e(CATEGORY[alert['category']])} · {_when(alert['received'], household)}</h3>"
        f'<p class="text">{e(alert["text"])}</p>'
        f'<p class="state">{e(STATE[alert["state"]])}</p>'
        f'<form method="post" action="/alerts/{e(alert["id"])}/ack" class="buttons">'
        f"{csrf_field(csrf)}{buttons}</form>"
        f'<a href="/alerts/{e(alert["id"])}">See what happened so far</a></article>'
    )


EVENTS = {
    "opened": "Raised by the device",
    "delivered": "Reached the family",
    "sent": "Sent",
    "waiting": "Held back (quiet hours or grace time)",
    "escalated": "Escalated",
    "acknowledged": "Acknowledged",
    "answered_again": "Answered again",
    "cancelled": "Further notices cancelled",
    "closed": "Closed",
    "stopped": "Stopped",
    "no_recipient": "Nobody to tell",
    "repeated": "Called for help again",
    "step_failed": "A step could not be taken (skipped)",
    "undelivered": "Not received (no app listening, or refused); tried again",
}


PURPOSES = {
    "alert": "the alert",
    "escalation": "an escalation",
    "update": "an update",
    "ack": "the answer, to the device",
    "answered": "word that someone answered",
    "taken": "word that the dose was taken",
    "refused": "word to the device that nobody could be told",
}
CHANNELS = {"mqtt": "to the app", "sms": "by SMS", "phone": "by phone call"}


def _detail(event: str, detail: str | None) -> str:
    """A trail entry's detail in words ("alert by mqtt" is "the alert to the app")."""
    if event == "undelivered" and detail and ": " in detail:
        what, _, why = detail.partition(": ")
        return f"{_detail('sent', what)}: {why}"
    if event == "sent" and detail and " by " in detail:
        purpose, _, channel = detail.partition(" by ")
        if purpose in ("ack", "refused"):  # to the device, whatever carried it
            return PURPOSES[purpose]
        return f"{PURPOSES.get(purpose, purpose)} {CHANNELS.get(channel, 'by ' + channel)}"
    return detail or ""


def trail_page(alert: dict, household: Household) -> str:
    items = "".join(
        f"<li>{_when(ev['at'], household, '%a %d %b, %H:%M:%S')} — "
        f"{e(EVENTS.get(ev['event'], ev['event']))}"
        + (f" · {e(ev['actor_name'])}" if ev["actor_name"] else "")
        + (f" · {e(_detail(ev['event'], ev['detail']))}" if ev["detail"] else "")
        + "</li>"
        for ev in alert["trail"]
    )
    return (
        f'<section id="trail" data-live><p class="text">{e(alert["text"])}</p>'
        f"<p>{e(CATEGORY[alert['category']])}, {e(STATE[alert['state']])}{_by(alert)}.</p>"
        f'<h2>Escalation trail</h2><ol class="trail">{items}</ol></section>'
        '<p><a href="/">Back to the alerts</a></p>'
    )


# --- reminders ----------------------------------------------------------------------------


def reminders_page(
    items: list[dict], days: list[Day], csrf: str, form: dict[str, Any] | None = None
) -> str:
    rows = "".join(_reminder(r, csrf) for r in items) or "<p>No reminders yet.</p>"
    return (
        f'<section id="reminder-list" data-live aria-labelledby="rem-h"><h2 id="rem-h">'
        f"Reminders ({sum(r.get('state', 'active') == 'active' for r in items)})</h2>{rows}"
        "</section>"
        f'<section id="adherence" data-live aria-labelledby="adh-h"><h2 id="adh-h">Taken, '
        f"last {len(days)} days</h2>{adherence_chart(days)}</section>"
        '<section aria-labelledby="add-h" class="card"><h2 id="add-h">Add a reminder</h2>'
        f'<form method="post" action="/reminders" class="reminder-form">{csrf_field(csrf)}'
        f"{_reminder_fields(form or {}, 'new', kind=True)}"
        '<button type="submit" class="primary">Add the reminder</button></form></section>'
    )


def _days_text(days: list[str] | None) -> str:
    return "every day" if not days else ", ".join(d.capitalize() for d in days)


def _reminder(r: dict, csrf: str) -> str:
    status = {
        "sent": "waiting for the device",
        "confirmed": "on the device",
        "failed": "the device could not set it",
        None: "",
    }.get(r["command"], r["command"])
    why = r.get("command_detail")
    if r["command"] == "failed" and r.get("command_type") == "command.reminder.change":
        status = "the last change failed"
    elif r["command"] == "failed" and r.get("command_type") == "command.reminder.remove":
        status = "the removal failed"
    if r["command"] == "failed" and why:
        status += f": {why}"
    what = e(r["text"]) + (f" ({e(r['medication'])})" if r.get("medication") else "")
    rid = e(r["id"])
    if r.get("state") == "failed":  # not on the device: nothing to change or remove
        why = f": {why}" if why else ""
        return (
            f'<article class="reminder" data-reminder="{rid}"><h3>{e(r["at"])} · {what}</h3>'
            f"<p>{e(_days_text(r.get('days')))} · {e(r.get('kind', ''))} · "
            f"{e('the device could not add it' + why)}. Add it again below.</p></article>"
        )
    return (
        f'<article class="reminder" data-reminder="{rid}"><h3>{e(r["at"])} · {what}</h3>'
        f"<p>{e(_days_text(r.get('days')))} · {e(r.get('kind', ''))}"
        f"{' · ' + e(status) if status else ''}</p>"
        f"{_UNTRACKED_NOTE if reminders.untracked(r) else ''}"
        f'<details><summary>Change<span class="sr"> the reminder {what}</span></summary>'
        f'<form method="post" action="/reminders/{rid}" class="reminder-form">'
        f"{csrf_field(csrf)}{_reminder_fields(r, rid)}"
        '<button type="submit">Save the change</button></form></details>'
        f'<form method="post" action="/reminders/{rid}/remove">{csrf_field(csrf)}'
        f'<button type="submit" class="danger">Remove<span class="sr"> the reminder {what}'
        "</span></button></form></article>"
    )


# The device asks "have you taken it?" and reports a miss only for a medicine it can name.
_UNTRACKED_NOTE = (
    '<p class="caution">Said once only: without the medicine\'s name the device does not ask'
    " whether it was taken, and a missed dose is not reported. Add the name to be told.</p>"
)


def _reminder_fields(values: dict[str, Any], prefix: str, kind: bool = False) -> str:
    def field(name: str, label: str, kind_: str = "text", required: bool = False) -> str:
        return (
            f'<label for="{prefix}-{name}">{label}</label>'
            f'<input id="{prefix}-{name}" name="{name}" type="{kind_}" '
            f'value="{e(values.get(name))}"{" required" if required else ""}>'
        )

    chosen = values.get("days") or []
    boxes = "".join(
        f'<label class="day"><input type="checkbox" name="days" value="{d}"'
        f"{' checked' if d in chosen else ''}> {d.capitalize()}</label>"
        for d in WEEKDAYS
    )
    out = field("text", "What to say", required=True) + field("at", "At", "time", True)
    out += (
        f'<fieldset><legend>Days (none ticked: every day)</legend><div class="days">{boxes}'
        "</div></fieldset>"
    )
    if kind:
        options = "".join(
            f'<option value="{k}"{" selected" if values.get("kind") == k else ""}>'
            f"{k.replace('_', ' ').capitalize()}</option>"
            for k in KINDS
        )
        out += f'<label for="{prefix}-kind">Kind</label><select id="{prefix}-kind" name="kind">'
        out += f"{options}</select>"
    out += field("medication", "Medication (its name: then a missed dose is reported)")
    out += field("dose", "Dose (optional)")
    return out


# --- charts -------------------------------------------------------------------------------

W, H, PAD = 640, 220, 48


def adherence_chart(days: list[Day]) -> str:
    taken = sum(d.taken for d in days)
    due = taken + sum(d.missed for d in days)
    summary = (
        f"{taken} of {due} reminders taken ({round(100 * taken / due)}%)" if due else "none due"
    )
    top = max((d.taken + d.missed for d in days), default=0) or 1
    step = (W - 2 * PAD) / max(len(days), 1)
    bars = []
    for i, d in enumerate(days):
        x = PAD + i * step + step * 0.15
        width = step * 0.7
        h_taken = (H - 2 * PAD) * d.taken / top
        h_missed = (H - 2 * PAD) * d.missed / top
        y_taken = H - PAD - h_taken
        label = f"{d.day}: {d.taken} taken, {d.missed} missed"
        bars.append(
            f"<g><title>{e(label)}</title>"
            f'<rect class="taken" x="{x:.1f}" y="{y_taken:.1f}" width="{width:.1f}" '
            f'height="{h_taken:.1f}"/><rect class="missed" x="{x:.1f}" '
            f'y="{y_taken - h_missed:.1f}" width="{width:.1f}" height="{h_missed:.1f}"/></g>'
        )
    labels = ""
    if days:
        labels = (
            f'<text x="{PAD}" y="{H - 10}">{_short(days[0].day)}</text>'
            f'<text x="{W - PAD}" y="{H - 10}" text-anchor="end">{_short(days[-1].day)}</text>'
            f'<text x="{PAD - 6}" y="{PAD + 4}" text-anchor="end">{top}</text>'
            f'<text x="{PAD - 6}" y="{H - PAD}" text-anchor="end">0</text>'
        )
    return (
        f'<p class="summary">{e(summary.capitalize())}.</p>'
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Reminders per day: '
        f'{e(summary)}"><line class="axis" x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" '
        f'y2="{H - PAD}"/>{"".join(bars)}{labels}</svg>'
        '<p class="legend"><span class="key taken"></span> taken '
        '<span class="key missed"></span> missed</p>'
    )


def _short(day: str) -> str:
    return e(dt.date.fromisoformat(day).strftime("%d %b"))


def line_chart(measure: str, series: list[Reading], household: Household) -> str:
    name, default_unit = MEASURES.get(measure, (measure, ""))
    unit = series[-1].unit or default_unit
    values = [r.value for r in series] + [r.diastolic for r in series if r.diastolic is not None]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    start, end = series[0].at, series[-1].at
    span = (end - start) or 1.0

    def point(at: float, value: float) -> tuple[float, float]:
        x = PAD + (W - 2 * PAD) * ((at - start) / span if end > start else 0.5)
        y = H - PAD - (H - 2 * PAD) * (value - low) / (high - low)
        return x, y

    def line(pairs: Iterable[tuple[float, float]], cls: str) -> str:
        pts = [point(at, v) for at, v in pairs]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        dots = "".join(f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="4"/>' for x, y in pts)
        return f'<polyline class="{cls}" points="{path}"/>{dots}'

    last = series[-1]
    latest = f"{last.value:g}" + (f"/{last.diastolic:g}" if last.diastolic is not None else "")
    summary = (
        f"{name}: {len(series)} readings from {local_time(start, household, '%d %b')} to "
        f"{local_time(end, household, '%d %b')}, latest {latest} {unit}, lowest {low:g}, "
        f"highest {high:g}"
    )
    lines = line(((r.at, r.value) for r in series), "main")
    if any(r.diastolic is not None for r in series):
        lines += line(((r.at, r.diastolic) for r in series if r.diastolic is not None), "second")
    return (
        f'<figure class="reading" data-measure="{e(measure)}"><figcaption><strong>{e(name)}'
        f"</strong> · latest {e(latest)} {e(unit)} on {e(local_time(last.at, household))}"
        f'</figcaption><svg class="chart" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{e(summary)}"><line class="axis" x1="{PAD}" y1="{H - PAD}" '
        f'x2="{W - PAD}" y2="{H - PAD}"/>{lines}'
        f'<text x="{PAD - 6}" y="{PAD + 4}" text-anchor="end">{high:g}</text>'
        f'<text x="{PAD - 6}" y="{H - PAD}" text-anchor="end">{low:g}</text>'
        f'<text x="{PAD}" y="{H - 10}">{e(local_time(start, household, "%d %b"))}</text>'
        f'<text x="{W - PAD}" y="{H - 10}" text-anchor="end">'
        f"{e(local_time(end, household, '%d %b'))}</text></svg></figure>"
    )


# --- health and device --------------------------------------------------------------------


def health_page(
    series: dict[str, list[Reading]], devices: list[dict], household: Household, now: float
) -> str:
    rows = "".join(_device(d, household, now) for d in devices)
    charts = (
        "".join(line_chart(m, series[m], household) for m in MEASURES if series.get(m))
        or "<p>No readings in the last 30 days.</p>"
    )
    return (
        '<section id="devices" data-live aria-labelledby="dev-h"><h2 id="dev-h">Devices</h2>'
        '<div class="scroll"><table><thead><tr><th scope="col">Device</th>'
        '<th scope="col">State</th><th scope="col">Last heard</th><th scope="col">Battery'
        f"</th></tr></thead><tbody>{rows}</tbody></table></div></section>"
        f'<section id="readings" data-live aria-labelledby="read-h"><h2 id="read-h">Health '
        f"readings, last 30 days</h2>{charts}</section>"
    )


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} hours ago"
    return f"{round(seconds / 86400)} days ago"


def _device(d: dict, household: Household, now: float) -> str:
    state = {"online": "Online", "offline": "Offline", None: "Never heard of"}[d["state"]]
    heard = f"{_when(d['heard'], household)} ({_ago(now - d['heard'])})" if d["heard"] else "—"
    battery = f"{d['battery']}%" if d["battery"] is not None else "—"
    if d["battery"] is not None and d["battery"] <= 15:
        battery = f'<strong class="low">{battery} (low)</strong>'
    return (
        f'<tr data-device="{e(d["device"])}"><td>{e(d["device"])}</td>'
        f'<td class="state-{e(d["state"] or "unknown")}">{state}</td><td>{heard}</td>'
        f"<td>{battery}</td></tr>"
    )


def not_found() -> str:
    return page("Not found", '<p>There is nothing here for you.</p><p><a href="/">Home</a></p>')
