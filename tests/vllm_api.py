"""The names of vLLM's API that stp/models/vllm_sampler.py uses, read from vLLM's source with
``ast`` (never imported: vLLM needs a GPU and is not installed on most machines).

    python tests/vllm_api.py SITE_PACKAGES_OR_UNPACKED_WHEEL "WHERE IT CAME FROM" \
        > tests/data/vllm_api.json

prints, for each class the sampler touches, the names it accepts or has: keyword parameters,
dataclass/struct fields, methods, and attributes its ``__init__`` sets. tests/data/vllm_api.json
holds them for the pinned release; tests/test_vllm_sampler.py checks the sampler's calls
against it, and against the installed vLLM's source where there is one.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

# (name in the record, file under vllm/, class)
CLASSES = (
    ("LLM", "entrypoints/llm.py", "LLM"),
    ("EngineArgs", "engine/arg_utils.py", "EngineArgs"),  # where LLM's **kwargs go
    ("SamplingParams", "sampling_params.py", "SamplingParams"),
    ("RequestOutput", "outputs.py", "RequestOutput"),
    ("CompletionOutput", "outputs.py", "CompletionOutput"),
    ("LLMEngine", "v1/engine/llm_engine.py", "LLMEngine"),
    ("ModelConfig", "config/model.py", "ModelConfig"),
    ("TokenizerLike", "tokenizers/protocol.py", "TokenizerLike"),
)


# Methods whose parameters are recorded: the ones the sampler calls with keywords.
CALLED = ("__init__", "generate", "encode")


def class_names(tree: ast.Module, name: str) -> dict[str, list[str]]:
    """A class's fields (annotated class attributes), methods (the parameters of those in
    ``CALLED``) and the attributes its ``__init__`` sets on ``self``."""
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    fields, attributes = [], []
    methods: dict[str, list[str]] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            fields.append(node.target.id)
        elif isinstance(node, ast.FunctionDef):
            args = node.args
            methods[node.name] = [a.arg for a in [*args.args[1:], *args.kwonlyargs]]
            if node.name == "__init__":
                for sub in ast.walk(node):
                    target = sub.target if isinstance(sub, ast.AnnAssign) else None
                    targets = sub.targets if isinstance(sub, ast.Assign) else [target]
                    for t in targets:
                        if (
                            isinstance(t, ast.Attribute)
                            and isinstance(t.value, ast.Name)
                            and t.value.id == "self"
                        ):
                            attributes.append(t.attr)
    return {
        "fields": sorted(set(fields)),
        "attributes": sorted(set(attributes)),
        "methods": sorted(methods),
        **{f"{m} parameters": methods[m] for m in CALLED if m in methods},
    }


def read_api(root: Path) -> dict[str, dict[str, list[str]]]:
    """The record for the vLLM source under ``root`` (the folder holding ``vllm/``)."""
    return {
        record: class_names(ast.parse((root / "vllm" / path).read_text()), cls)
        for record, path, cls in CLASSES
    }


if __name__ == "__main__":
    root, source = Path(sys.argv[1]), sys.argv[2]
    lines = [f' "source": {json.dumps(source)}']
    lines += [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in read_api(root).items()]
    print("{\n" + ",\n".join(lines) + "\n}")
