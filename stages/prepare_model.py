"""Stage prepare-model: materialise ``model.name_or_path`` as a safetensors folder."""

from supernova import stage
from supernova.config import from_section
from supernova.model import ModelConfig, prepare_base_model
from supernova.paths import BASE_MODEL


def main(params: dict) -> None:
    m = from_section(ModelConfig, params, "model")
    prepare_base_model(m.name_or_path, BASE_MODEL, dtype=m.dtype, seed=params.get("seed", 0))


if __name__ == "__main__":
    stage.run("prepare-model", main)
