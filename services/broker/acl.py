"""Who may read and write which topics: least privilege, one account per party.

Every account is one of (username: what it may write / what it may read):

- device `{household}/device/{id}`: its own status, alert, event, consultation, family and
  conversation / its own command, alert/ack, consultation/update, refused, conversation;
- member `{household}/member/{id}` (a family member's or caregiver's app): its own ack and
  command / its own inbox and refused, and the status of its household's devices;
- doctor `{practice}/doctor/{id}` (a doctor's app): its own status, action and text / its
  own session and refused; no device's topic (a text consultation goes through
  doctor-connect, which passes lines on only to and from the doctor holding it);
- service `service/{name}`: what that service sends / what that service takes.

Usernames put the party between the owner and the id; ids cannot contain `/`, so no two
accounts can share a username. The topics themselves come from `protocol.topics` only.
Mosquitto's dynamic-security plugin enforces them and refuses whatever is not granted: a
subscription to it gets "not authorized" in the SUBACK, a publication to it "not authorized"
in the PUBACK (and is not delivered). (A plain `acl_file` would accept any subscription and
only filter at delivery.)
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import topics

PARTIES = ("device", "member", "doctor", "service")
SERVICES = ("family-notify", "doctor-connect")

READ, WRITE, READWRITE = "read", "write", "readwrite"

# What each service takes (reads) and sends (writes), by topic kind, across households.
_SERVICE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "family-notify": (
        ("alert", "event", "family", "status", "member_ack", "member_command"),
        ("alert_ack", "command", "refused", "inbox", "member_refused"),
    ),
    "doctor-connect": (
        ("consultation", "doctor_status", "doctor_action", "doctor_text", "conversation"),
        ("consultation_update", "refused", "doctor_session", "doctor_refused", "conversation"),
    ),
}


@dataclass(frozen=True)
class Account:
    """One broker account. `owner` is the household (the practice for a doctor, the service
    name for a service), `endpoint` the device, member or doctor id (None for a service)."""

    party: str
    owner: str
    endpoint: str | None = None
    practice: str | None = None  # a doctor-connect service: the practice it serves

    def __post_init__(self) -> None:
        if self.party not in PARTIES:
            raise ValueError(f"unknown party {self.party!r}")
        if self.party == "service":
            if self.owner not in SERVICES:
                raise ValueError(f"unknown service {self.owner!r} ({', '.join(SERVICES)})")
            if self.owner == "doctor-connect" and not topics.valid_id(self.practice):
                raise ValueError("doctor-connect needs the practice it serves")
            return
        if not topics.valid_id(self.owner) or not topics.valid_id(self.endpoint):
            owner = "practice" if self.party == "doctor" else "household"
            raise ValueError(f"not a valid {owner} or {self.party} id: 1-64 letters, digits, _ . -")

    @property
    def username(self) -> str:
        if self.party == "service":
            return f"service/{self.owner}"
        return f"{self.owner}/{self.party}/{self.endpoint}"

    @property
    def client_id(self) -> str | None:
        """The only client id the account may connect with (None: any, for a service's
        several workers). Bound, so that no account can take over another's session (and
        with it the messages waiting there) by using its client id."""
        if self.party == "service":
            return None
        if self.party == "device":
            assert self.endpoint is not None
            return topics.device_client_id(self.owner, self.endpoint)
        return self.username

    @property
    def household(self) -> str | None:
        return self.owner if self.party in ("device", "member") else None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "party": self.party,
            "owner": self.owner,
            "endpoint": self.endpoint,
            "practice": self.practice,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> Account:
        return cls(
            party=str(data["party"]),
            owner=str(data["owner"]),
            endpoint=data.get("endpoint"),
            practice=data.get("practice"),
        )


def rules(account: Account) -> list[tuple[str, str]]:
    """(access, topic filter) pairs granted to `account`."""
    party, owner, me = account.party, account.owner, account.endpoint
    if party == "device":
        assert me is not None
        own = [(WRITE, topics.device_topic(owner, me, kind)) for kind in topics.DEVICE_OUTBOUND]
        own += [(READ, topics.device_topic(owner, me, kind)) for kind in topics.DEVICE_INBOUND]
        own.append((READWRITE, topics.conversation(owner, me)))
        return own
    if party == "member":
        assert me is not None
        return [
            (WRITE, topics.member_ack(owner, me)),
            (WRITE, topics.member_command(owner, me)),
            (READ, topics.inbox(owner, me)),
            (READ, topics.member_refused(owner, me)),
            (READ, topics.subscription("status", household=owner)),
        ]
    if party == "doctor":
        assert me is not None
        granted = [(WRITE, topics.doctor_topic(owner, me, k)) for k in topics.DOCTOR_OUTBOUND]
        granted += [(READ, topics.doctor_topic(owner, me, k)) for k in topics.DOCTOR_INBOUND]
        return granted  # a text consultation goes through doctor-connect (protocol.topics)
    reads, writes = _SERVICE_KINDS[owner]
    return [(READ, _any(kind, account.practice)) for kind in reads] + [
        (WRITE, _any(kind, account.practice)) for kind in writes
    ]


def _any(kind: str, practice: str | None) -> str:
    """The filter of `kind` across every household (a doctor's kind: across the doctors of
    the service's practice)."""
    party = topics.party_of(kind)
    if party == "member":
        return topics.member_subscription(kind)
    if party == "doctor":
        assert practice is not None
        return topics.doctor_subscription(kind, practice)
    return topics.subscription(kind)


def dynsec_acls(account: Account) -> list[dict[str, object]]:
    """The account's rules as Mosquitto dynamic-security ACL entries: reading is subscribing
    and receiving, writing is sending. A service's filters are granted as shared
    subscriptions too (`$share/<group>/...`): Mosquitto 2.0 checks the whole filter."""
    out: list[dict[str, object]] = []
    for access, topic in rules(account):
        if access in (READ, READWRITE):
            patterns = [topic]
            if account.party == "service":
                patterns.append(topics.shared_any(topic))
            out += [{"acltype": "subscribePattern", "topic": p, "allow": True} for p in patterns]
            out.append({"acltype": "publishClientReceive", "topic": topic, "allow": True})
        if access in (WRITE, READWRITE):
            out.append({"acltype": "publishClientSend", "topic": topic, "allow": True})
    return out
