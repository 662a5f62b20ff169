"""Independent reference evaluators used to check the catalogue's answers."""
