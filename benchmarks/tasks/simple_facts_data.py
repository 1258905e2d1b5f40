"""The items of the ``hyperfit_simple_facts`` lm-eval task, read from simple_facts.jsonl beside this file.

lm-eval calls :func:`load` (the task's ``custom_dataset``) with the task's metadata as keyword arguments; the
file is found relative to this module, not the working directory, and nothing is downloaded or cached.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).with_name("simple_facts.jsonl")


def load(**_metadata):
    import datasets

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
