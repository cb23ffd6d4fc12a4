"""Distill stage: train the model's dynamics (the student) from a frozen PocketWorld teacher on
token clips, with core/distill.py's loss (labels + KL on logits + projected feature MSE).

Both models must read the same tokens: the token shards, the student's tokenizer and the
teacher's tokenizer must have the same fingerprint (a teacher with another tokenizer is
distilled through the frame-teacher route instead: record its rollouts as shards). The
exported model is the student; the projection used by the feature term is dropped.
"""

from __future__ import annotations

from core.config import ConfigError
from core.distill import DistillObjective
from core.train.data import DataError
from core.train.dynamics import DynamicsStage
from core.world_model import WorldModel


class DistillStage(DynamicsStage):
    def __init__(self, config, model):
        super().__init__(config, model)
        options = config.distill
        if not options.teacher:
            raise ConfigError("the distill stage needs a teacher: set distill.teacher to a WorldModel folder or Hub id")
        self.teacher = WorldModel.from_pretrained(options.teacher)
        self.objective = DistillObjective(model.dynamics, self.teacher.dynamics, options)

    def check_data(self, refs):
        from core.train.tokens import tokenizer_fingerprint

        super().check_data(refs)
        if tokenizer_fingerprint(self.teacher.tokenizer) != tokenizer_fingerprint(self.model.tokenizer):
            raise DataError(
                f"the teacher {self.config.distill.teacher} reads other tokens than the student (its "
                "tokenizer differs); record its rollouts with core.distill.record_teacher_rollouts "
                "and train on those shards instead"
            )

    def to(self, device):
        self.teacher.to(device)


STAGE = DistillStage
