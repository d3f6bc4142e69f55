"""The intent engine: Home Assistant sentence templates (hassil) with tolerant matching."""

from intents.engine import IntentEngine, IntentMatch, IntentsError

__all__ = ["IntentEngine", "IntentMatch", "IntentsError"]
