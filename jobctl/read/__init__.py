"""Run log and state → operators: where jobs stand, metrics, doctor, tables and JSON."""
