"""Job files → validated specs: the key table, the YAML loader, schedules, the JSON Schema."""
