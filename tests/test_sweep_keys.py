"""The sweep's job keys stay byte-identical (existing result folders resume without rerunning a job),
and a sweep config is checked once: the SweepConfig that check_config returns is not checked again."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from cchmi import cli  # noqa: E402
from cchmi.distill import sweep  # noqa: E402
from cchmi.distill.config import KDConfig  # noqa: E402
from cchmi.distill.sweep import config as sweep_config  # noqa: E402

# Keys of the bundled configs' jobs (first, middle, last) and their numbers, as the sweep made them
# before the KD code was split into distill/config, rows, training, predictors and sweep/ (0c2c2eb):
# the folders runs/<key> of sweeps run since then.
KNOWN_KEYS = {
    "demo_digits": (64, "42982f69366d5b7d", "9e9869599a5a80b2", "10ab990b46cd5a7e"),
    "demo_synthetic": (64, "c446b6af4f9b459f", "0378eb57fc06f034", "3e2db4558dd38770"),
    "digits": (1800, "68b3468d10376a23", "c4f329c525a8ba50", "efd5db61ddd7dff0"),
    "digits_cpu": (900, "c062a11b8c5cd3ee", "2951967630e695a5", "855531667536eb97"),
    "fashion": (1200, "580b77ac8fa58d13", "97dcccb9ff680609", "7db2806f6c24c6e3"),
    "synthetic": (240, "5986127c6a952e6f", "bf1fafd5cec0cbe6", "a92e73e7270db1a3"),
    # The CCH issue's configs (issue 29), as first written, before any of their runs.
    "knobs_digits": (200, "16fcf553d334be96", "7e41e6623bda45ef", "2ea4205abe593ff6"),
    "knobs_nuisance_digits": (160, "7d843ca71a8f81be", "ffb75a560bce72e5", "69b7e66e5c785fa1"),
    "primary_digits": (600, "37531fb6bbb2204d", "431d8fac5cc4fdb7", "6da7d1da8a00be01"),  # N = 40 added
    "primary_emoji": (240, "0e78be714aefb0c8", "6a31177e355ceaa4", "c5b41a2306cab958"),
    "primary_omics": (400, "eb274febcb92b2c0", "9e8d7ed2154f0750", "d13cd99ca9e0334e"),
    "transfer_digits": (200, "cd98a5f1ba170559", "5e5cf60670e602db", "0de61b29d5a27937"),  # 5 pairs, cut before a run
    "demo_primary_digits": (30, "3ee4ad4240147ae5", "331b5a2beb4e559c", "7932d392351b8c8c"),
    "demo_primary_emoji": (20, "0351b552767bea2f", "a993def3d6ef1c51", "862ff82b7c5894dc"),
    "transfer_repair_digits": (120, "4c10ff1cdf0fa116", "d47945f8ca767d87", "a053a6cf174d6ed5"),
}


@pytest.mark.parametrize("name", sorted(KNOWN_KEYS))
def test_bundled_job_keys_are_unchanged(name):
    keys = [job["key"] for job in sweep.expand_jobs(cli._bundled_config(name))]
    count, first, middle, last = KNOWN_KEYS[name]
    assert (len(keys), keys[0], keys[len(keys) // 2], keys[-1]) == (count, first, middle, last)


def test_every_bundled_job_makes_its_kd_config():
    """A job's tables give the KDConfig that run_kd runs (the sweep's [kd], [budget], [student] ...)."""
    job = sweep.expand_jobs(cli._bundled_config("digits"))[-1]
    config = sweep.job_config(job)
    assert isinstance(config, KDConfig) and config.source == "toml"
    assert (config.teacher_view, config.student_view, config.seed) == (job["teacher_view"], job["student_view"], 9)
    assert config.kd.teacher_rows == "disjoint" and config.budget.teacher_labels_per_class == 40
    assert config.budget.student_labels_per_class == job["point"]["budget.student_labels_per_class"]
    assert config.student_train.kd_weight == job["point"]["student.kd_weight"] and config.teacher_train.kd_weight == 1.0
    assert config.student_train.steps == config.teacher_train.steps == 300


def test_a_checked_config_is_not_checked_again(monkeypatch):
    checked = sweep.check_config(cli._bundled_config("demo_synthetic"))
    calls = []
    real = sweep_config._checked_values
    monkeypatch.setattr(sweep_config, "_checked_values", lambda config: calls.append(1) or real(config))
    assert sweep.check_config(checked) is checked and sweep.expand_jobs(checked) == list(checked.jobs)
    assert calls == []
    assert checked.name == "demo-synthetic" and checked.regime == "budget.student_labels_per_class"
    assert sweep.check_config(dict(checked.values)).jobs == checked.jobs and calls == [1]


def test_the_old_module_paths_still_import():
    """cchmi.distill.experiment and cchmi.distill.executors re-export the sweep's names for one release."""
    from cchmi.distill import executors, experiment
    from cchmi.distill.sweep import executors as sweep_executors

    assert experiment.run_experiment is sweep.run_experiment and experiment.expand_jobs is sweep.expand_jobs
    assert experiment.SweepIncomplete is sweep.SweepIncomplete and experiment.load_config is sweep.load_config
    assert executors.run_remote is sweep_executors.run_remote
    assert executors.check_options is sweep_executors.check_options
