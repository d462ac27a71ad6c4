"""What every stage script shares: params loading, logging, and the one-line failure report."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Callable

from .config import load_params, stage_params
from .errors import PipelineError


def run(stage: str, main: Callable[[dict], None]) -> None:
    """Run ``main(params)``; on failure print one line naming the stage, file, task and field.

    ``params`` holds only what ``stage`` declares in dvc.yaml (:class:`supernova.config.StageParams`):
    reading anything else fails, so a stage never runs on a key whose change would not rerun it.
    Set ``SUPERNOVA_DEBUG=1`` to get the full traceback as well.
    """
    logging.basicConfig(level=os.environ.get("SUPERNOVA_LOG", "INFO"),
                        format=f"[{stage}] %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "vllm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        main(stage_params(load_params(), stage))
    except PipelineError as e:
        _debug()
        print(f"{stage}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # an unexpected failure still gets one line with where it happened
        _debug()
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {os.path.relpath(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        msg = " ".join(str(e).split())
        print(f"{stage}: failed: {type(e).__name__}: {msg}{where}", file=sys.stderr)
        sys.exit(1)


def _debug() -> None:
    if os.environ.get("SUPERNOVA_DEBUG"):
        traceback.print_exc()
