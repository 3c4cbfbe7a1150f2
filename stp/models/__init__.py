"""Models: sampling (transformers on CPU, vLLM on GPUs), the offline tiny model, training."""

from __future__ import annotations

from stp.config import SamplingConfig
from stp.models.sampler import Completion, Sampler

__all__ = ["Completion", "Sampler", "make_sampler"]


def make_sampler(model: str, config: SamplingConfig) -> Sampler:
    """The sampler ``config.backend`` names, over ``model`` (a local folder or a hub id)."""
    if config.backend == "vllm":
        from stp.models.vllm_sampler import VLLMSampler  # needs the `gpu` extra

        return VLLMSampler(model, config)
    from stp.models.hf_sampler import HFSampler

    return HFSampler(model, config)
