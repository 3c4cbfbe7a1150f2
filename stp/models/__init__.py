"""Models: sampling (transformers on CPU, vLLM on GPUs), the offline tiny model, training."""

from stp.models.sampler import Completion, Sampler

__all__ = ["Completion", "Sampler"]
