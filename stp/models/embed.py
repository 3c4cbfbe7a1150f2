"""Text embeddings from the model itself: STP re-weights the selected conjectures toward the
still-unproved statements by nearest neighbours in this space."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from stp.models.hf_sampler import default_device, resolve_dtype


@torch.inference_mode()
def mean_pooled_embeddings(
    model: str, texts: Sequence[str], batch_size: int = 32, dtype: str = "auto"
) -> np.ndarray:
    """One L2-normalised float32 row per text: the mean of the last hidden states over the
    text's tokens (padding excluded). ``model`` is a local folder or a hub id."""
    device = default_device()
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # AutoModel loads the bare transformer of a causal LM checkpoint: no vocabulary projection.
    encoder = AutoModel.from_pretrained(
        model, dtype=resolve_dtype(dtype, device), device_map=device
    )
    encoder.eval()
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]), return_tensors="pt", padding=True
        ).to(device)
        hidden = encoder(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
        rows.append(torch.nn.functional.normalize(mean, dim=-1).cpu())
    if not rows:
        return np.zeros((0, encoder.config.hidden_size), dtype=np.float32)
    return torch.cat(rows).numpy().astype(np.float32)
