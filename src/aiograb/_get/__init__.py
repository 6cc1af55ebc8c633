"""``get``: input sources, run state, the engine (one worker loop), the public API."""
