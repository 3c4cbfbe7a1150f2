"""Figures quoted from the literature, shown beside measured ones and always marked as quoted.

Only figures checked against their source are listed. All are Lean 4 whole-proof generation
with 7B models; none was measured by this code. ``std`` is the spread the source reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STP_PAPER = "Dong & Ma 2025, STP, arXiv:2502.00212"
STP_README = "github.com/kfdong/STP README (pass@3200 table, measured by the STP authors)"
DEEPSEEK_V15_PAPER = "Xin et al. 2024, DeepSeek-Prover-V1.5, arXiv:2408.08152"
GOEDEL_PAPER = "Lin et al. 2025, Goedel-Prover, arXiv:2502.07640"


@dataclass(frozen=True, slots=True)
class QuotedResult:
    """One published pass@k figure. ``value`` is a fraction; PutnamBench figures are quoted
    as solved counts (``solved`` of ``total``), as their sources give them."""

    model: str
    benchmark: str
    split: str
    prover: str
    k: int
    source: str
    value: float | None = None
    std: float | None = None
    solved: int | None = None
    total: int | None = None

    def format(self) -> str:
        if self.solved is not None:
            return f"{self.solved}/{self.total}" if self.total else f"{self.solved} solved"
        assert self.value is not None
        text = f"{100 * self.value:.1f}%"
        return text + (f" ± {100 * self.std:.1f}%" if self.std is not None else "")

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "benchmark": self.benchmark,
            "split": self.split,
            "prover": self.prover,
            "k": self.k,
            "value": self.value,
            "std": self.std,
            "solved": self.solved,
            "total": self.total,
            "source": self.source,
            "quoted": True,
        }


_STP = "STP (7B, from DeepSeek-Prover-V1.5-SFT)"
_DS_SFT = "DeepSeek-Prover-V1.5-SFT"
_DS_RL = "DeepSeek-Prover-V1.5-RL"
_GOEDEL = "Goedel-Prover-SFT"

QUOTED: tuple[QuotedResult, ...] = (
    QuotedResult(_STP, "minif2f", "test", "lean", 128, STP_PAPER, value=0.612),
    QuotedResult(_STP, "minif2f", "test", "lean", 3200, STP_README, value=0.650, std=0.005),
    QuotedResult(_STP, "minif2f", "test", "lean", 25600, STP_PAPER, value=0.676),
    QuotedResult(_STP, "proofnet", "test", "lean", 128, STP_PAPER, value=0.195),
    QuotedResult(_STP, "proofnet", "test", "lean", 3200, STP_README, value=0.239, std=0.006),
    QuotedResult(_STP, "proofnet", "test", "lean", 25600, STP_PAPER, value=0.269),
    QuotedResult(_STP, "putnambench", "test", "lean", 3200, STP_PAPER, solved=8, total=644),
    QuotedResult(_DS_SFT, "minif2f", "test", "lean", 3200, STP_README, value=0.533, std=0.005),
    QuotedResult(_DS_SFT, "proofnet", "test", "lean", 3200, STP_README, value=0.210, std=0.009),
    QuotedResult(_DS_RL, "minif2f", "test", "lean", 32, DEEPSEEK_V15_PAPER, value=0.500),
    QuotedResult(_DS_RL, "minif2f", "test", "lean", 3200, STP_README, value=0.549, std=0.007),
    QuotedResult(_DS_RL, "proofnet", "test", "lean", 3200, STP_README, value=0.220, std=0.005),
    QuotedResult(_GOEDEL, "minif2f", "test", "lean", 32, GOEDEL_PAPER, value=0.576),
    QuotedResult(_GOEDEL, "putnambench", "test", "lean", 512, GOEDEL_PAPER, solved=7),
)


def quoted_for(
    benchmark: str, split: str, prover: str, table: Sequence[QuotedResult] = QUOTED
) -> list[QuotedResult]:
    """The quoted figures for one benchmark, split and proof assistant, by model then k."""
    rows = [r for r in table if (r.benchmark, r.split, r.prover) == (benchmark, split, prover)]
    return sorted(rows, key=lambda r: (r.model, r.k))
