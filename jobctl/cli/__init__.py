"""The command line: thin typer commands over the stages below, grouped by stage."""
