"""The proxy benchmark's statistics: per-round ratios and their bootstrap interval."""

from __future__ import annotations

import math

import pytest

from benchmarks.proxy import Result, ratio_interval, round_ratios


def _result(rounds_rps: list[float]) -> Result:
    return Result(
        requests=int(sum(rounds_rps)),
        errors=0,
        seconds=len(rounds_rps),
        latencies_ms=[],
        rounds_rps=rounds_rps,
    )


def test_a_constant_ratio_has_a_zero_width_interval_whatever_the_background_load() -> None:
    bottom = [1000.0, 700.0, 1100.0, 650.0, 900.0]
    low, high = ratio_interval(_result([0.9 * r for r in bottom]), _result(bottom))
    assert low == pytest.approx(0.9) and high == pytest.approx(0.9)


def test_the_interval_contains_the_overall_ratio_and_widens_with_noise() -> None:
    bottom = [1000.0] * 12
    calm = [880.0, 900.0, 920.0] * 4
    noisy = [700.0, 900.0, 1100.0] * 4
    calm_low, calm_high = ratio_interval(_result(calm), _result(bottom))
    noisy_low, noisy_high = ratio_interval(_result(noisy), _result(bottom))
    assert calm_low < 0.9 < calm_high
    assert noisy_low < 0.9 < noisy_high
    assert noisy_high - noisy_low > 2 * (calm_high - calm_low)


def test_the_interval_is_reproducible_and_reported() -> None:
    top, bottom = _result([850.0, 990.0, 870.0, 930.0]), _result([1000.0, 1010.0, 950.0, 990.0])
    assert ratio_interval(top, bottom) == ratio_interval(top, bottom)
    low, high = ratio_interval(top, bottom)
    assert f"overall 90 % CI {low:.2f}-{high:.2f}" in round_ratios(top, bottom)


def test_one_round_gives_no_interval() -> None:
    low, high = ratio_interval(_result([900.0]), _result([1000.0]))
    assert math.isnan(low) and math.isnan(high)
