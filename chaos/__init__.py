"""chaos: the bridge under faults, and the accounting that shows what became of each event."""
