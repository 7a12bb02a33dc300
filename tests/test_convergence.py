"""The convergence verdict on fabricated histories: a rising curve is not converged, a plateau is."""

import math

import pytest

from normtest_lib import convergence
from normtest_lib.convergence import accuracy_gap, last_step_decay, loss_slope, rule_text, verdict, window_size


def history(losses, accuracies=None, lrs=None):
    accuracies = accuracies or [min(0.99, 1 - loss / 3) for loss in losses]
    lrs = lrs or [0.1] * len(losses)
    return [
        {"epoch": epoch, "train_loss": loss, "train_acc": acc, "lr": lr}
        for epoch, (loss, acc, lr) in enumerate(zip(losses, accuracies, lrs), start=1)
    ]


def test_a_curve_still_learning_in_a_straight_line_is_not_converged():
    # study 2's first edition: accuracy 26 % -> 58 % in 8 epochs, the loss falling steadily
    losses = [2.0 - 0.12 * epoch for epoch in range(8)]
    accuracies = [0.26 + 0.045 * epoch for epoch in range(8)]
    result = verdict(history(losses, accuracies))
    assert not result.converged and "still falling" in result.reason
    assert result.window == 3 and result.loss_slope == pytest.approx(-0.12)


def test_a_plateau_is_converged():
    losses = [2.0 * math.exp(-epoch / 3) + 0.1 for epoch in range(30)]
    result = verdict(history(losses))
    assert result.converged, result.reason
    assert result.window == 6  # the last fifth of 30 epochs
    assert abs(result.loss_change) <= 0.05


def test_a_flat_loss_below_the_best_accuracy_is_not_converged():
    losses = [1.0] * 10
    accuracies = [0.8] * 8 + [0.5, 0.5]  # fell at the end: its last 5 epochs average 68 %, its best 5 80 %
    result = verdict(history(losses, accuracies))
    assert not result.converged and "training accuracy over its last 5 epochs 12.0 points below its best" in result.reason


def test_one_noisy_epoch_below_the_best_is_not_a_fall():
    # Study 3's small training sets: the accuracy moves about a point from one epoch to the next around a plateau.
    losses = [2.0 * math.exp(-epoch / 3) + 0.1 for epoch in range(30)]
    accuracies = [0.80 + 0.012 * (-1) ** epoch for epoch in range(29)] + [0.788]  # the last 2.4 points under the best
    result = verdict(history(losses, accuracies))
    assert result.converged and result.accuracy_gap == pytest.approx(0.0048)  # the last 5 against the best 5
    assert accuracy_gap([0.5, 0.6, 0.7]) == 0.0 and accuracy_gap([0.9] * 6 + [0.8] * 5) == pytest.approx(0.1)


def test_a_loss_near_zero_that_halves_is_flat_in_absolute_terms():
    losses = [1.0 / (epoch + 1) for epoch in range(40)] + [0.008, 0.006, 0.005, 0.004, 0.003, 0.002, 0.002, 0.001, 0.001, 0.001]
    result = verdict(history(losses, [0.999] * len(losses)))
    assert abs(result.loss_change) > 0.05 and result.converged  # -60 % relative, but under 0.01 nats


def test_the_window_starts_after_the_last_step_decay():
    lrs = [0.1] * 16 + [0.02] * 4  # a step decay at epoch 17 of 20, to a fifth of the peak
    losses = [1.0] * 16 + [0.5, 0.5, 0.5, 0.5]
    assert last_step_decay(lrs) == 16
    result = verdict(history(losses, [0.9] * 20, lrs))
    assert result.converged and result.window == 4  # the drop before the decay is outside the window
    late = verdict(history(losses[:18], [0.9] * 18, lrs[:18]))
    assert not late.converged and "too few epochs" in late.reason and "epoch 17" in late.reason


def test_a_loss_flattened_by_a_step_decay_to_a_hundredth_of_the_peak_is_not_converged():
    # Study 2's layer norm with the published schedule: still learning when lr / 10 at 75 and 95 of 100;
    # flat at 1 % of the peak, but judged at 10 % (epochs 77-95), where its loss still fell.
    lrs = [0.1] * 75 + [0.01] * 20 + [0.001] * 5
    losses = [2.3 - 0.012 * epoch for epoch in range(75)] + [1.4 - 0.01 * epoch for epoch in range(20)] + [1.2] * 5
    result = verdict(history(losses, [0.5] * 100, lrs), train_acc_final=0.53)
    assert not result.converged and result.window == 19 and "still falling" in result.reason
    assert "fits 53.0 % of its training images" in result.reason
    # Judged after its last decay alone (epochs 96-100), the same run would look flat.
    assert verdict(history(losses[-5:], [0.5] * 5, [0.1] * 5)).converged


def test_a_network_that_fits_its_training_set_has_converged_whatever_its_loss_does():
    lrs = [0.1] * 75 + [0.01] * 20 + [0.001] * 5
    losses = [2.3 * 0.96 ** epoch for epoch in range(100)]  # still halving every 17 epochs
    result = verdict(history(losses, [0.99] * 100, lrs), train_acc_final=0.994)
    assert result.converged and "fits its training set (99.4 % of its images)" in result.reason
    assert not verdict(history(losses, [0.99] * 100, lrs), train_acc_final=0.94).converged
    assert not verdict(history(losses, [0.99] * 99 + [0.9], lrs), train_acc_final=0.994).converged  # below its best


def test_a_cosine_schedule_has_no_step_decay():
    lrs = [0.05 * (1 + math.cos(math.pi * epoch / 50)) for epoch in range(50)]
    assert last_step_decay(lrs) is None


def test_incomplete_or_too_short_runs_are_not_judged():
    assert not verdict(history([1.0] * 10), status="failed").converged
    assert "too few epochs" in verdict(history([1.0, 1.0])).reason
    assert window_size(8) == 3 and window_size(100) == 20


def test_loss_slope_is_the_least_squares_slope_over_the_last_fifth():
    losses = [5.0] * 10 + [1.0, 0.8, 0.6]  # 13 epochs: the last 3
    assert loss_slope(losses) == pytest.approx(-0.2)
    assert math.isnan(loss_slope([1.0]))


def test_the_books_rule_is_written_from_the_modules_constants(monkeypatch):
    assert "most 5 % of their mean" in rule_text() and "0.01 nats" in rule_text() and "within 1 point of" in rule_text()
    assert "averaged over its last 5 epochs" in rule_text()
    assert "last 20 % of the epochs it trained at 10 % of its peak" in rule_text() and "at least 95 %" in rule_text()
    monkeypatch.setattr(convergence, "LOSS_TOLERANCE", 0.02)
    monkeypatch.setattr(convergence, "ACCURACY_TOLERANCE", 0.005)
    assert "most 2 % of their mean" in rule_text() and "within 0.5 points of" in rule_text()


def cosine(epochs, peak=0.1):
    return [peak * (1 + math.cos(math.pi * epoch / epochs)) / 2 for epoch in range(epochs)]


def test_a_loss_flattened_by_a_cosine_schedule_annealing_to_zero_is_not_converged():
    # 8 cosine epochs: the loss falls while the learning rate is high and flattens as it vanishes.
    lrs = cosine(8)
    losses = [2.3, 2.1, 1.95, 1.82, 1.7, 1.6, 1.55, 1.545]
    accuracies = [0.15, 0.2, 0.24, 0.27, 0.29, 0.3, 0.3, 0.3]
    result = verdict(history(losses, accuracies, lrs))
    assert not result.converged and "still falling" in result.reason
    assert result.window == 3  # epochs 5-7: epoch 8 trains below 10 % of the peak learning rate
    # Judged on the last fifth of its whole run, the same history would look flat.
    assert abs(losses[-1] - losses[-3]) / (sum(losses[-3:]) / 3) < 0.05


def test_decays_in_the_last_epochs_leave_nothing_to_judge():
    # Study 2's first-edition runs: lr / 10 at epochs 7 and 8 of 8, the loss flattening at 30 % accuracy.
    lrs = [0.1] * 6 + [0.01, 0.001]
    losses = [2.336, 2.19, 2.09, 2.05, 2.0, 1.976, 1.899, 1.88]
    result = verdict(history(losses, [0.12, 0.17, 0.21, 0.23, 0.25, 0.26, 0.30, 0.30], lrs))
    assert last_step_decay(lrs) == 7
    assert not result.converged and "too few epochs" in result.reason and "(epoch 7)" in result.reason


def test_a_cosine_run_that_plateaued_before_annealing_is_converged():
    lrs = cosine(50)
    losses = [2.0 * math.exp(-epoch / 4) + 0.05 for epoch in range(50)]
    result = verdict(history(losses, [0.99] * 50, lrs))
    assert result.converged, result.reason
    judged = sum(rate >= 0.1 * max(lrs) for rate in lrs)  # the epochs before the learning rate falls below 10 %
    assert judged == 40 and result.window == 8


def test_the_rule_text_names_the_annealed_tail():
    assert "Below a tenth of its peak" in rule_text()
