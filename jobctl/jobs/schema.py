"""The JSON Schema (draft 2020-12) of a job file, generated from spec.FIELDS."""

from __future__ import annotations

from typing import Any

from jobctl import __version__
from jobctl.jobs import spec


def job_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for f in spec.FIELDS:
        properties[f.key] = {**f.schema, "description": f.doc}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://jobctl.invalid/schema/job-{__version__}.json",
        "title": "jobctl job file",
        "description": "One job per YAML document; see jobctl(1), JOB FILES.",
        "type": "object",
        "properties": properties,
        "required": [f.key for f in spec.FIELDS if f.required],
        "additionalProperties": False,
    }
