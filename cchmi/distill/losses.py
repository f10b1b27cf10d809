"""Distillation losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), summed over classes, mean over the batch
    (Hinton et al. 2015; the T^2 keeps gradients comparable across temperatures)."""
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / t, dim=1)
    return t * t * F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)


def feature_kd_loss(projected_student: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the projected student features and the teacher's, per element."""
    return F.mse_loss(projected_student, teacher_features)
