"""Stage decision: metrics/decision.json, the few figures a curation choice is decided on (how far
the ranking can be trusted, what was chosen, the trained model against base and chance), the
metrics file `dvc exp show` and `dvc metrics diff` list first."""

from supernova import stage
from supernova.io import read_json, read_yaml, write_json
from supernova.report import DECISION, EVAL, MIXTURE, UTILITY, decision


def main(params: dict) -> None:
    write_json(DECISION, decision(read_json(UTILITY), read_yaml(MIXTURE), read_json(EVAL)))


if __name__ == "__main__":
    stage.run("decision", main)
