"""What is kept: the journal (the only owner of SQL), sinks, exports."""
