"""Hardware profiles and adapters (buttons, indicators, volume, location, calls)."""
