"""Self-play rounds: seeds, conjectures, proof attempts, verification, selection, training."""
