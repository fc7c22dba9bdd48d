"""Paths of the project's committed reference fixtures (Tests/Fixtures)."""
import json
import pathlib

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "Tests" / "Fixtures"


def jsonl(*parts):
    path = FIXTURES.joinpath(*parts)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
