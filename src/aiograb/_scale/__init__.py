"""Scale-out: one run planned into parts by host, each part an event loop in its own process."""
