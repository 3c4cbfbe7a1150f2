"""Models: sampling (a fast decode loop or transformers on CPU, vLLM on GPUs), the offline tiny
model, training."""

from __future__ import annotations

import logging

from stp.config import SamplingConfig
from stp.models.sampler import Completion, Sampler

__all__ = ["Completion", "Sampler", "make_sampler"]

log = logging.getLogger(__name__)


def make_sampler(model: str, config: SamplingConfig) -> Sampler:
    """The sampler ``config.backend`` names, over ``model`` (a local folder or a hub id).

    ``auto`` is ``fast`` on a machine without a CUDA GPU and ``hf`` on one; ``fast`` falls
    back to ``hf`` (with a warning that says why) for a model it does not implement."""
    if config.backend == "vllm":
        from stp.models.vllm_sampler import VLLMSampler  # needs the `gpu` extra

        return VLLMSampler(model, config)
    from stp.models.hf_sampler import HFSampler, default_device

    if config.backend == "fast" or (config.backend == "auto" and default_device().type == "cpu"):
        from stp.models.fast_sampler import FastSampler, UnsupportedModelError

        try:
            return FastSampler(model, config)
        except UnsupportedModelError as exc:
            log.warning("fast sampler: %s; sampling %s with transformers generate", exc, model)
    return HFSampler(model, config)
