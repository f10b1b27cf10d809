"""The one training loop (cchmi.neural.training): early stopping after `patience` evaluations
without improvement, the best weights restored, the epoch and step budgets, evaluation every N
steps or once per pass, the batches it draws."""

import math

import pytest

torch = pytest.importorskip("torch")

from cchmi.neural.training import EarlyStopping, batches, fit  # noqa: E402


def _scripted(scores, model=None):
    """A model whose single weight is set to the number of steps taken, a step that bumps it, and
    an evaluation that returns the next of `scores` (and records where it was called)."""
    model = model or torch.nn.Linear(1, 1, bias=False)
    calls, steps_seen = [], []
    it = iter(scores)

    def step(batch, at):
        steps_seen.append(batch.clone())
        with torch.no_grad():
            model.weight.fill_(at.step + 1)

    def evaluate(at):
        calls.append((at.epoch, at.step))
        return next(it)

    return model, step, evaluate, calls, steps_seen


def test_stops_after_patience_evaluations_without_improvement_and_restores_the_best():
    model, step, evaluate, calls, _ = _scripted([1.0, 3.0, 2.0, 3.0, 2.5, 9.0])
    stopping = EarlyStopping(model, patience=3, maximize=True)
    at = fit(model, step, evaluate, stopping, n_rows=4, batch_size=2, generator=torch.Generator().manual_seed(0),
             epochs=100)
    # evaluations at the end of passes 0..4: the best (3.0) is the second, then 3 without improvement
    assert calls == [(0, 2), (1, 4), (2, 6), (3, 8), (4, 10)]
    assert stopping.history == [1.0, 3.0, 2.0, 3.0, 2.5] and stopping.best == 3.0
    assert at.epoch == 4 and at.step == 10
    assert float(model.weight.detach()) == 4.0  # the weights after step 4, where the best evaluation was


def test_minimising_with_min_delta():
    model, step, evaluate, calls, _ = _scripted([5.0, 4.0, 4.0 - 1e-9, 3.9, 3.95, 3.95])
    stopping = EarlyStopping(model, patience=2, maximize=False, min_delta=1e-6)
    fit(model, step, evaluate, stopping, n_rows=3, batch_size=3, generator=torch.Generator(), epochs=100)
    # 4 - 1e-9 is not an improvement on 4 by more than min_delta; 3.9 is
    assert stopping.history == [5.0, 4.0, 4.0 - 1e-9, 3.9, 3.95, 3.95] and stopping.best == 3.9
    assert float(model.weight.detach()) == 4.0


def test_epoch_budget():
    model, step, evaluate, calls, _ = _scripted(range(10))
    at = fit(model, step, evaluate, EarlyStopping(model, patience=1, maximize=True), n_rows=5, batch_size=2,
             generator=torch.Generator(), epochs=3)
    assert calls == [(0, 3), (1, 6), (2, 9)] and at.epoch == 3  # a pass of 5 rows: batches of 2, 2, 1


def test_step_budget_and_evaluation_every_n_steps():
    # 7 rows in batches of 3: 3 steps a pass; evaluations every 2 steps are not aligned with passes
    model, step, evaluate, calls, _ = _scripted([1.0, 2.0, 3.0, 4.0, 5.0])
    stopping = EarlyStopping(model, patience=10, maximize=True)
    at = fit(model, step, evaluate, stopping, n_rows=7, batch_size=3, generator=torch.Generator(), steps=7,
             eval_every=2)
    # evaluated at steps 2, 4, 6 and once more at the budget's last step (7), in passes 0, 1, 1, 2
    assert calls == [(0, 2), (1, 4), (1, 6), (2, 7)] and at.step == 7
    assert float(model.weight.detach()) == 7.0 and stopping.best == 4.0


def test_step_budget_on_an_evaluation_is_not_evaluated_twice():
    model, step, evaluate, calls, _ = _scripted([1.0, 2.0, 3.0])
    fit(model, step, evaluate, EarlyStopping(model, patience=10, maximize=True), n_rows=4, batch_size=1,
        generator=torch.Generator(), steps=6, eval_every=3)
    assert calls == [(0, 3), (1, 6)]  # 4 steps a pass


def test_step_budget_with_evaluation_per_pass():
    model, step, evaluate, calls, _ = _scripted([1.0, 2.0, 3.0])
    fit(model, step, evaluate, EarlyStopping(model, patience=10, maximize=True), n_rows=4, batch_size=2,
        generator=torch.Generator(), steps=5)
    assert calls == [(0, 2), (1, 4), (2, 5)]  # the budget ends in pass 2, evaluated there


def test_evaluation_every_n_steps_stops_on_patience_mid_pass():
    model, step, evaluate, calls, _ = _scripted([2.0, 1.0, 1.0, 5.0])
    stopping = EarlyStopping(model, patience=2, maximize=True)
    at = fit(model, step, evaluate, stopping, n_rows=10, batch_size=1, generator=torch.Generator(), epochs=5,
             eval_every=3)
    assert calls == [(0, 3), (0, 6), (0, 9)] and at.step == 9 and float(model.weight.detach()) == 3.0


def test_batches_are_the_generators_permutation_and_small_ones_are_skipped():
    model, step, evaluate, _, seen = _scripted([0.0, 0.0])
    fit(model, step, evaluate, EarlyStopping(model, patience=5, maximize=True), n_rows=7, batch_size=3,
        generator=torch.Generator().manual_seed(3), epochs=2, min_batch=3)
    gen = torch.Generator().manual_seed(3)
    expected = []
    for _ in range(2):
        order = torch.randperm(7, generator=gen)
        expected += [order[0:3], order[3:6]]  # the last row of each pass is below min_batch
    assert len(seen) == 4 and all(torch.equal(a, b) for a, b in zip(seen, expected))
    assert [b.tolist() for b in batches(5, 2, None)] == [[0, 1], [2, 3]]
    assert [b.tolist() for b in batches(5, 2, None, min_batch=1)] == [[0, 1], [2, 3], [4]]


def test_training_mode_each_pass_and_evaluation_without_gradients():
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Dropout(0.5))
    modes, grad = [], []

    def step(batch, at):
        modes.append(model.training)

    def evaluate(at):
        grad.append(torch.is_grad_enabled())
        model.eval()
        return 0.0

    fit(model, step, evaluate, EarlyStopping(model, patience=5, maximize=True), n_rows=2, batch_size=1,
        generator=torch.Generator(), epochs=2)
    assert modes == [True, True, True, True] and grad == [False, False]


def test_no_finite_score_is_refused_unless_the_initial_weights_are_kept():
    model, step, evaluate, _, _ = _scripted([math.nan] * 3)
    with pytest.raises(FloatingPointError, match="the validation loss was not finite at any evaluation"):
        fit(model, step, evaluate, EarlyStopping(model, patience=2, maximize=False, what="the validation loss"),
            n_rows=2, batch_size=2, generator=torch.Generator(), epochs=5)
    model, step, evaluate, _, _ = _scripted([math.nan] * 3)
    with torch.no_grad():
        model.weight.fill_(-1.0)
    stopping = EarlyStopping(model, patience=2, maximize=False, keep_initial=True)
    fit(model, step, evaluate, stopping, n_rows=2, batch_size=2, generator=torch.Generator(), epochs=5)
    assert float(model.weight.detach()) == -1.0  # the initial weights, although 2 steps changed them
    assert len(stopping.history) == 2 and all(map(math.isnan, stopping.history))


def test_a_budget_is_required():
    model, step, evaluate, _, _ = _scripted([])
    with pytest.raises(ValueError, match="epochs or steps"):
        fit(model, step, evaluate, EarlyStopping(model, patience=1, maximize=True), n_rows=2, batch_size=1,
            generator=torch.Generator())


def test_steps_after_an_evaluation_in_the_middle_of_a_pass_train_in_training_mode():
    """An evaluation every step leaves eval mode (dropout off); the next steps of the same pass
    must train with dropout again (they did not: the loop set training mode once per pass)."""
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Dropout(0.5))
    modes = []

    def evaluate(at):
        model.eval()
        return float(at.step)

    fit(model, lambda batch, at: modes.append(model.training), evaluate,
        EarlyStopping(model, patience=10, maximize=True), n_rows=4, batch_size=1, generator=torch.Generator(),
        steps=4, eval_every=1)
    assert modes == [True, True, True, True]
