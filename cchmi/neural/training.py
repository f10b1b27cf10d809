"""The one training loop of the learned estimators: minibatch passes, evaluation on held-out rows,
early stopping that keeps the best evaluation's weights.

:class:`EarlyStopping` holds the best score, a copy of the weights that gave it and the patience
count; :func:`fit` runs passes (epochs) over shuffled training rows, calls a step function on each
batch, evaluates every ``eval_every`` steps or once per pass, stops when the stopper's patience has
run out or the epoch / step budget is spent, and restores the best weights. The caller owns the
model, the optimiser and what a step and an evaluation are, so the neural bounds, the latent
embeddings, the probe and the KD trainer train the same way while keeping their own objectives.

Random streams: the loop draws only ``torch.randperm(n_rows, generator=generator)`` once at the
start of each pass; seeding (``torch.manual_seed``, the generator) stays with the caller.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


def batches(n_rows: int, batch_size: int, generator: torch.Generator | None, *,
            min_batch: int | None = None) -> list[torch.Tensor]:
    """Consecutive batches of ``batch_size`` positions in 0..n_rows-1: of a
    ``torch.randperm(n_rows, generator=generator)``, or in order when generator is None. Batches of
    fewer than ``min_batch`` positions (the last one; min_batch None: batch_size, i.e. full batches
    only) are left out."""
    order = torch.randperm(n_rows, generator=generator) if generator is not None else torch.arange(n_rows)
    least = batch_size if min_batch is None else min_batch
    return [b for b in (order[s : s + batch_size] for s in range(0, n_rows, batch_size)) if b.numel() >= least]


class EarlyStopping:
    """The best evaluation so far, the weights of `model` that gave it and the patience count.

    A score improves on the best when it is above ``best + min_delta`` (``maximize=True``) or below
    ``best - min_delta``; the first finite score always does, a NaN never does. With
    ``keep_initial`` the weights at construction are kept until a score improves on +-inf (so
    :meth:`restore` always has weights); otherwise :meth:`restore` raises when no evaluation gave a
    usable score. ``what`` names the score in that error. ``history`` lists every score.
    """

    def __init__(self, model: torch.nn.Module, *, patience: int, maximize: bool, min_delta: float = 0.0,
                 keep_initial: bool = False, what: str = "the validation score"):
        self.model, self.patience, self.maximize, self.min_delta, self.what = model, patience, maximize, min_delta, what
        self.best = -math.inf if maximize else math.inf
        self.best_state = copy.deepcopy(model.state_dict()) if keep_initial else None
        self.since, self.history = 0, []

    def update(self, score: float) -> bool:
        """Record one evaluation; keep the weights when it improves on the best. True when
        ``patience`` evaluations in a row have not improved (time to stop)."""
        self.history.append(score)
        better = score > self.best + self.min_delta if self.maximize else score < self.best - self.min_delta
        if better:
            self.best, self.best_state, self.since = score, copy.deepcopy(self.model.state_dict()), 0
            return False
        self.since += 1
        return self.since >= self.patience

    def restore(self) -> None:
        """Load the best weights into the model (FloatingPointError when there are none)."""
        if self.best_state is None:
            raise FloatingPointError(f"{self.what} was not finite at any evaluation: lower lr")
        self.model.load_state_dict(self.best_state)


@dataclass
class Position:
    """Where the loop is: ``epoch`` the 0-based pass over the training rows under way (after the
    loop: the pass it stopped in, or ``epochs`` when it ran them all), ``step`` the optimiser steps
    taken so far."""

    epoch: int = 0
    step: int = 0


def fit(model: torch.nn.Module, step: Callable[[torch.Tensor, Position], None],
        evaluate: Callable[[Position], float], stopping: EarlyStopping, *, n_rows: int, batch_size: int,
        generator: torch.Generator, epochs: int | None = None, steps: int | None = None,
        eval_every: int | None = None, min_batch: int = 1) -> Position:
    """Train until early stopping or the budget, then restore the best weights.

    Each pass (epoch) puts `model` in training mode and draws a permutation of ``n_rows`` positions
    from `generator`; ``step(batch, position)`` is called on each of its consecutive batches of
    ``batch_size`` positions (batches under ``min_batch`` positions are skipped; the step does the
    forward, backward and optimiser step itself, the positions index the caller's training rows).
    ``evaluate(position)`` is called under ``torch.no_grad()`` every ``eval_every`` steps, or at the
    end of every pass when eval_every is None; it sets the modules' modes it needs, and the loop
    puts `model` back in training mode after it (the steps after an evaluation in the middle of a
    pass train with dropout as the others do). Its score goes to
    ``stopping.update``; training ends when that says stop, after ``epochs`` passes or after
    ``steps`` steps (None: no limit on that count; give at least one). A run ended by the step
    budget between two evaluations is evaluated once more. Finally ``stopping.restore()`` loads the
    best weights. Returns the final :class:`Position`.
    """
    if epochs is None and steps is None:
        raise ValueError("fit needs a budget: epochs or steps")
    at, last_eval = Position(), -1

    def check() -> bool:
        nonlocal last_eval
        with torch.no_grad():
            score = float(evaluate(at))
        model.train()  # an evaluation in the middle of a pass may have left eval mode (dropout off)
        last_eval = at.step
        return stopping.update(score)

    done = False
    while not done and (epochs is None or at.epoch < epochs):
        model.train()
        for batch in batches(n_rows, batch_size, generator, min_batch=min_batch):
            step(batch, at)
            at.step += 1
            if eval_every is not None and at.step % eval_every == 0 and check():
                done = True
                break
            if steps is not None and at.step >= steps:
                done = True
                break
        if not done and eval_every is None:
            done = check()
        if not done:
            at.epoch += 1
    if last_eval != at.step:
        check()
    stopping.restore()
    return at
