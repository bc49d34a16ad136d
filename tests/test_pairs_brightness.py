"""benchmarks/pairs_brightness.py: the brightness rule k(m) fitted to per-image gain tables."""
import numpy as np
from conftest import load_script


def tables(pair_m, frame_m):
    """Pairs whose PSNR peaks at gain 1 (30 dB); frames lifted by 0.1 x gain, never clipped."""
    pb = load_script("benchmarks/pairs_brightness.py")
    lk = np.log(pb.GAINS)
    return pb, {"psnr": np.tile(30.0 - 20.0 * lk**2, (len(pair_m), 1)), "pair_m": np.asarray(pair_m),
                "lift": np.tile(0.1 * pb.GAINS, (len(frame_m), 1)), "clipped": np.zeros((len(frame_m), len(lk))),
                "frame_m": np.asarray(frame_m)}


def test_a_rule_serves_both_sets_when_the_frames_are_darker_than_every_pair():
    pb, t = tables(np.linspace(0.1, 0.25, 10), [0.03] * 8)
    free, held = pb.best_rule(t, constrained=False), pb.best_rule(t, constrained=True)
    assert free["pairs_psnr"] > 29.99 and free["lift"] < 0.11  # no target: gain 1 everywhere
    assert held["lift"] >= 0.1499 and held["pairs_psnr"] > 29.9  # the dark frames alone get the gain of 1.5
    assert held["gain_at"]["0.02"] > 1.4 and abs(held["gain_at"]["0.18"] - 1.0) < 0.02


def test_a_rule_costs_the_pairs_what_the_lift_needs_when_both_sets_look_alike():
    pb, t = tables(np.linspace(0.1, 0.25, 10), np.linspace(0.1, 0.25, 8))
    held = pb.best_rule(t, constrained=True)
    assert held["lift"] >= 0.1499
    # everything needs gain 1.5: 30 - 20 ln(1.5)^2 = 26.7 dB
    assert abs(held["pairs_psnr"] - (30.0 - 20.0 * np.log(1.5) ** 2)) < 0.2
