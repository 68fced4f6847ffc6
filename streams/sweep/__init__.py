"""The sweep: pre-filter, chunks decided in processes, balancing, writes, checkpoints."""
