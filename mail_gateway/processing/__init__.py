"""From a stored inbound message to core commands and an answer (ARCHITECTURE, steps 2–3)."""
