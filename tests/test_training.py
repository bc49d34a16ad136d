import signal
from pathlib import Path

import numpy as np
import pytest

from conftest import signal_on_call
from edgeenhance.errors import UserError
from edgeenhance.models.registry import load_model
from edgeenhance.train.bilateral import train_bilateral
from edgeenhance.train.common import load_training_state


def small_run(tmp_path, **kw):
    args = dict(steps=40, batch=4, crop=64, n_images=12, val_images=2, val_every=20, progress=False, lr=3e-3,
                model_config=dict(lowres=64, grid_size=8, bins=4, width=4), log=lambda *_: None)
    args.update(kw)
    return train_bilateral(tmp_path, **args)


def test_short_training_lowers_loss(tmp_path):
    r = small_run(tmp_path, steps=60, val_every=30)
    h = r["history"]
    assert np.mean(h[-8:]) < 0.8 * np.mean(h[:8])
    m = load_model(str(tmp_path / "best.safetensors"))
    assert m.config["bins"] == 4


def test_zero_reference_lowers_loss(tmp_path):
    r = small_run(tmp_path, zero_reference=True)
    h = r["history"]
    assert np.mean(h[-8:]) < np.mean(h[:8])


def test_the_one_sided_exposure_term_lifts_dark_patches_and_leaves_bright_ones():
    import torch

    from edgeenhance.train.losses import exposure_loss

    half = torch.zeros(1, 3, 32, 32)
    half[..., 16:] = 0.9  # left half dark (0), right half bright (0.9); level 0.5
    both, lift = exposure_loss(half, 0.5), exposure_loss(half, 0.5, one_sided=True)
    assert both.item() == pytest.approx((0.25 + 0.16) / 2, rel=1e-5)
    assert lift.item() == pytest.approx(0.25 / 2, rel=1e-5)  # the bright patches cost nothing
    assert exposure_loss(torch.full((1, 3, 32, 32), 0.8), 0.5, one_sided=True).item() == 0.0


def test_the_shadow_term_scores_the_outputs_of_the_darkest_input_pixels():
    import torch

    from edgeenhance.train.losses import shadow_loss, zero_reference_loss

    # 10 grey 16x16 tiles, darkest on the left
    x = torch.linspace(0.0, 0.9, 10).repeat_interleave(16).view(1, 1, 1, 160).expand(1, 3, 16, 160).contiguous()
    out = x.clone()
    out[..., :48] = 0.2  # the darkest 30% (3 tiles) lifted to 0.2, the rest left alone
    assert shadow_loss(out, x, 0.3).item() == pytest.approx(0.1 ** 2, rel=1e-4)
    assert shadow_loss(out, x, 0.2).item() == pytest.approx(0.0, abs=1e-9)  # at the level: nothing to lift
    out[..., 48:] = 1.0  # brighter pixels do not count, however bright
    assert shadow_loss(out, x, 0.3).item() == pytest.approx(0.1 ** 2, rel=1e-4)
    s = torch.ones_like(x)
    added = zero_reference_loss(out, s, x, shadows=0.3) - zero_reference_loss(out, s, x)
    assert added.item() == pytest.approx(10 * 0.1 ** 2, rel=1e-3)  # off by default, weight 10 when on
    out.requires_grad_(True)
    shadow_loss(out, x, 0.3).backward()
    assert (out.grad[..., :48] < 0).all() and (out.grad[..., 48:] == 0).all()  # only the shadows are pushed up


def test_zero_reference_losses_only_on_crops_darker_than_the_limit_or_with_highlights(tmp_path):
    import torch

    import edgeenhance.train.bilateral as bil

    grey = torch.full((4, 3, 8, 8), 0.2)
    grey[1] = 0.05
    grey[2, :, :4] = 1.0  # half white, half 0.2: mean 0.6
    grey[3, :, 0, :4] = 0.8  # a dim frame (mean 0.24) with a lamp: 4 of its 64 pixels
    assert bil._zero_ref_crops(grey, 0.1).tolist() == [False, True, False, False]
    assert bil._zero_ref_crops(grey, 1.0).all()
    assert bil._zero_ref_crops(grey, 0.1, highlights=0.7).tolist() == [False, True, True, True]
    assert bil._zero_ref_crops(grey, 0.1, highlights=0.9).tolist() == [False, True, True, False]

    photos, dark = photo_dir(tmp_path / "photos"), photo_dir(tmp_path / "dark", level=0.1, seed=1)
    real_loss, seen = bil.zero_reference_loss, []

    def spy(out, s, x, *a, **kw):
        seen.append(len(x))
        return real_loss(out, s, x, *a, **kw)

    bil.zero_reference_loss = spy
    try:
        for below in (1.0, 0.02):
            seen.clear()
            small_run(tmp_path / f"run{below}", data=str(photos), zero_ref=[dark], zero_ref_below=below, steps=3,
                      val_every=100, workers=0)
            assert seen == ([2, 2, 2] if below == 1.0 else [])  # half of each batch of 4 is dark frames
    finally:
        bil.zero_reference_loss = real_loss


def test_the_clipping_penalty_is_weighted_by_clip_weight(tmp_path, monkeypatch):
    import torch

    import edgeenhance.train.bilateral as bil

    monkeypatch.setattr(bil, "new_clipping_loss", lambda x, s: torch.ones((), requires_grad=True))
    first = {w: small_run(tmp_path / str(w), steps=1, val_every=100, clip_weight=w)["history"][0] for w in (2.0, 5.0)}
    assert first[5.0] - first[2.0] == pytest.approx(3.0, abs=1e-5)  # one penalty per step (no dark frames)


def test_resume_continues_from_saved_step(tmp_path):
    small_run(tmp_path, steps=20)
    r = small_run(tmp_path, steps=30, resume=True)
    assert len(r["history"]) == 10
    import torch

    from edgeenhance.models.bilateral import BilateralEnhancer

    m = BilateralEnhancer(lowres=64, grid_size=8, bins=4, width=4)
    opt = torch.optim.Adam(m.parameters())
    step, _ = load_training_state(tmp_path / "last.safetensors", {"model": m}, {"model": opt}, "cpu")
    assert step == 30 and len(opt.state) > 0


def test_resume_without_state_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no training state"):
        small_run(tmp_path, resume=True)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_folder(tmp_path, sub, n, name):
    """A small copy of a folder of ../shared/data (the real photos CI has beside the repo)."""
    import shutil

    src = SHARED / sub
    assert src.is_dir(), f"{src} is missing: the real-photo tests need ../shared/data beside the repo"
    dst = tmp_path / name
    dst.mkdir()
    for f in sorted(src.iterdir())[:n]:
        shutil.copy(f, dst / f.name)
    return dst


def test_short_real_photo_run_lowers_the_loss_and_lifts_real_dark_frames(tmp_path):
    from edgeenhance.data.photosets import heldout_pairs, load_photos, photo_files
    from edgeenhance.evaluate import evaluate_input

    photos = real_folder(tmp_path, "photos/bsd100", 12, "photos")
    dark = real_folder(tmp_path, "exposure/lol_our485_low", 8, "dark")
    logs = []
    r = small_run(tmp_path / "run", data=str(photos), zero_ref=[dark], steps=150, val_every=150, lr=5e-3,
                  log=logs.append, workers=0, ev_range=(-5.0, -1.0))
    h = r["history"]  # every batch is a new synthesis: compare long windows
    assert np.mean(h[-30:]) < 0.85 * np.mean(h[:30])
    val = heldout_pairs(load_photos(photo_files(photos, "val")), 24)
    assert r["best"]["psnr"] > evaluate_input(val)["psnr"] + 3  # the held-out pairs it validated on
    assert r["best"]["dark_lift"] > 0.005  # the identity start lifts nothing
    assert any("real low-light frames" in line for line in logs)
    assert any("exposure errors of -5 to -1 EV" in line for line in logs)


def test_real_photo_folder_without_dark_frames_is_a_clear_error(tmp_path):
    photos = real_folder(tmp_path, "photos/bsd100", 6, "photos")
    with pytest.raises(UserError, match="no frames darker"):
        small_run(tmp_path / "run", data=str(photos), zero_ref=[photos], steps=2)


def bright_frames(tmp_path, n=6):
    """The first ``n`` real over-exposed SICE frames (mean luminance above 0.6), copied."""
    import shutil

    from edgeenhance.data.imageio import read_image
    from edgeenhance.noref import mean_luminance

    src = SHARED / "exposure" / "sice_part1"
    assert src.is_dir(), f"{src} is missing: the real-photo tests need ../shared/data beside the repo"
    dst = tmp_path / "bright"
    dst.mkdir()
    for f in sorted(src.iterdir()):
        if mean_luminance(read_image(f)[::4, ::4]) > 0.6:
            shutil.copy(f, dst / f.name)
            if len(list(dst.iterdir())) == n:
                break
    return dst


def test_short_over_exposure_run_on_real_photos_darkens_and_recovers(tmp_path):
    from edgeenhance.data.photosets import heldout_pairs, load_photos, photo_files
    from edgeenhance.evaluate import evaluate_input

    photos = real_folder(tmp_path, "photos/bsd100", 12, "photos")
    logs = []
    r = small_run(tmp_path / "run", data=str(photos), exposure="over", zero_ref=[bright_frames(tmp_path)],
                  zero_ref_weight=0.0, steps=150, val_every=150, lr=5e-3, log=logs.append, workers=0)
    # clipped highlights keep the per-batch loss noisy; the held-out pairs show the learning (the
    # identity start scores the input's PSNR)
    val = heldout_pairs(load_photos(photo_files(photos, "val")), 24, kind="over", ev_range=(1.0, 2.5))
    assert evaluate_input(val)["psnr"] < 16  # over-exposed, not under-exposed, validation pairs
    assert r["best"]["psnr"] > evaluate_input(val)["psnr"] + 3
    assert r["best"]["bright_drop"] > 0.02  # real bright frames come out darker (the identity start: 0)
    assert any("real over-exposed frames" in line for line in logs)
    assert any("over-exposure errors of +1 to +3 EV synthesized" in line for line in logs)


def test_teacher_outputs_become_the_targets_of_real_frames(tmp_path):
    """Distillation: a (tiny, untrained) CycleGAN generator's outputs on the real frames are their
    targets, so the trained model ends closer to the teacher there than a run without it."""
    import torch

    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr
    from edgeenhance.models.cyclegan import ResnetGenerator
    from edgeenhance.models.registry import save_checkpoint

    photos = real_folder(tmp_path, "photos/bsd100", 6, "photos")
    bright = bright_frames(tmp_path, 4)
    torch.manual_seed(0)
    teacher = ResnetGenerator(ngf=4, n_blocks=1).eval()
    with torch.no_grad():  # a teacher whose outputs differ clearly from what the pairs teach: a dark tint
        teacher.head[-2].bias.copy_(torch.tensor([-1.5, -0.5, -2.0]))
    save_checkpoint(tmp_path / "teacher.safetensors", teacher)
    common = dict(data=str(photos), exposure="over", zero_ref=[bright], zero_ref_weight=0.0, steps=40, lr=5e-3,
                  workers=0, val_every=40)
    small_run(tmp_path / "plain", **common)
    small_run(tmp_path / "taught", teacher=tmp_path / "teacher.safetensors", teacher_weight=5.0, **common)
    from edgeenhance.data.photosets import load_photos, photo_files

    frames = [f.astype(np.float32) / 255 for f in load_photos(photo_files(bright, "all"), max_side=96)]
    targets = [enhance_array(teacher, f) for f in frames]

    def closeness(run):
        m = load_model(str(tmp_path / run / "final.safetensors"))
        return np.mean([psnr(enhance_array(m, f), t) for f, t in zip(frames, targets)])

    assert closeness("taught") > closeness("plain") + 1.0
    with pytest.raises(UserError, match="--teacher must be a CycleGAN generator"):
        small_run(tmp_path / "bad", teacher=tmp_path / "plain" / "final.safetensors", **common)
    with pytest.raises(UserError, match="--teacher needs --zero-ref"):
        small_run(tmp_path / "bad", **{**common, "zero_ref": []}, teacher=tmp_path / "teacher.safetensors")


# --- stopping, periodic saves and exact resume ---------------------------------------------------

def photo_dir(path, n=6, size=(72, 88), level=0.6, seed=0):
    """A folder of ``n`` tiny smooth photos of mean brightness about ``level``."""
    from conftest import save

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
    for i in range(n):
        base = level * (0.6 + 0.8 * rng.random(3)) * (0.5 + 0.5 * np.sin(6 * xx + i)[..., None] * np.cos(4 * yy)[..., None])
        save(path / f"img_{i}.png", np.clip(base + 0.03 * rng.random((*size, 3)), 0, 1).astype(np.float32))
    return path


def state_step(path):
    from edgeenhance.train.common import TrainingState

    return TrainingState(path).step


@pytest.mark.parametrize("source", ["synthetic", "photos"])
def test_a_run_stopped_by_a_signal_and_resumed_equals_the_uninterrupted_run(tmp_path, source):
    import torch

    import edgeenhance.train.bilateral as bil

    kw = dict(steps=8, val_every=100, n_images=6)
    if source == "photos":  # real-photo batches, rendered pairs (CropSampler) and dark frames, all resumed
        kw.update(data=str(photo_dir(tmp_path / "photos")), render_mix=0.5, workers=0,
                  zero_ref=[photo_dir(tmp_path / "dark", level=0.1, seed=1)], ema=0.9, zero_ref_one_sided=True)
    sig = signal.SIGINT if source == "synthetic" else signal.SIGTERM
    whole = small_run(tmp_path / "whole", **kw)["model"]
    with signal_on_call(bil, "supervised_loss", 4, sig):
        r = small_run(tmp_path / "cut", **kw)
    assert r["stopped"] == sig.name and len(r["history"]) == 4
    assert state_step(tmp_path / "cut" / "last.safetensors") == 4  # saved on the signal, not at a validation
    assert not (tmp_path / "cut" / "final.safetensors").exists()
    resumed = small_run(tmp_path / "cut", resume=True, **kw)
    assert len(resumed["history"]) == 4 and resumed["stopped"] is None
    for (name, a), b in zip(whole.state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name


def test_with_a_weight_average_the_average_is_validated_and_saved(tmp_path):
    import torch

    from edgeenhance.models.registry import load_model
    from edgeenhance.train.common import TrainingState

    r = small_run(tmp_path, steps=6, val_every=3, n_images=4, ema=0.8)
    state = TrainingState(tmp_path / "last.safetensors")
    final = load_model(str(tmp_path / "final.safetensors")).state_dict()
    trained = {k[len("model."):]: v for k, v in state.tensors.items() if k.startswith("model.")}
    averaged = {k[len("ema."):]: v for k, v in state.tensors.items() if k.startswith("ema.")}
    assert set(final) == set(averaged) == set(trained)
    assert all(torch.equal(final[k], averaged[k]) for k in final)
    assert any(not torch.equal(final[k], trained[k]) for k in final)  # the average, not the last step
    assert all(torch.equal(v, final[k]) for k, v in r["model"].state_dict().items())


def test_init_starts_from_the_given_model_and_a_clashing_config_is_refused(tmp_path):
    import torch

    first = small_run(tmp_path / "first", steps=20)["model"]
    # a learning rate too small to move the weights: the run ends where it started
    r = small_run(tmp_path / "tuned", steps=2, val_every=2, n_images=4, lr=1e-12,
                  init=str(tmp_path / "first" / "final.safetensors"))
    fresh = small_run(tmp_path / "fresh", steps=2, val_every=2, n_images=4, lr=1e-12)
    tuned = r["model"].state_dict()
    assert all(torch.allclose(tuned[k], v, atol=1e-6) for k, v in first.state_dict().items())
    assert not all(torch.allclose(fresh["model"].state_dict()[k], v, atol=1e-6) for k, v in tuned.items())
    with pytest.raises(UserError, match="width=4, but width=8"):
        small_run(tmp_path / "bad", init=first, model_config=dict(width=8))
    with pytest.raises(UserError, match="--init must be a bilateral model"):
        small_run(tmp_path / "bad", init="student-small")


def test_training_state_is_saved_every_save_every_s(tmp_path, monkeypatch):
    import edgeenhance.train.bilateral as bil

    calls = []

    def crash(*a, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("power cut")
        return orig(*a, **kw)

    orig = bil.supervised_loss
    monkeypatch.setattr(bil, "supervised_loss", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        small_run(tmp_path, steps=10, val_every=100, n_images=4, save_every_s=0)
    assert state_step(tmp_path / "last.safetensors") == 4


def test_a_corrupt_state_is_refused_before_any_data_work(tmp_path, monkeypatch):
    import edgeenhance.train.bilateral as bil

    def no_data(*a, **kw):
        raise AssertionError("data was loaded before the training state was checked")

    monkeypatch.setattr(bil, "paired_data", no_data)
    (tmp_path / "last.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad json}xxxxx")
    with pytest.raises(UserError, match="not a readable training state"):
        small_run(tmp_path, resume=True)
    with pytest.raises(UserError, match="no training state"):
        small_run(tmp_path / "empty", resume=True)


def test_zero_reference_on_a_plain_folder_of_dark_photos_is_chosen_by_a_noref_score(tmp_path):
    dark = photo_dir(tmp_path / "dark", n=8, level=0.1)
    logs = []
    r = small_run(tmp_path / "run", data=str(dark), zero_reference=True, steps=30, val_every=10, lr=1e-2, workers=0,
                  log=logs.append)
    assert r["selected_by"] == "noref"
    scores = [float(line.split("LOE fraction: ")[1].split(" ")[0]) for line in logs
              if line.startswith("step ") and "no-reference score" in line]
    assert len(scores) == 3  # logged at each validation, naming the score
    assert "chosen by no-reference score" in logs[0]
    best = r["best"]
    assert best["score"] == pytest.approx(max(scores), abs=1e-4) and best["dark_lift"] > 0.01
    meta = load_model(str(tmp_path / "run" / "best.safetensors"))
    assert meta.family == "bilateral"


def test_a_state_written_before_random_states_were_saved_still_resumes(tmp_path):
    """Runs started by an earlier version (only models, optimizers, step and extra) resume, with the
    LR schedule replayed to the same position."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    def lrs(run):
        with safe_open(str(run / "last.safetensors"), framework="pt") as f:
            return json.loads(f.metadata()["lrs"])

    small_run(tmp_path / "whole", steps=6, val_every=3, n_images=4)
    small_run(tmp_path / "old", steps=6, val_every=3, n_images=4, save_every_s=1e9)
    path = tmp_path / "old" / "last.safetensors"
    with safe_open(str(path), framework="pt") as f:  # rewrite the step-6 state as the old format at step 3
        meta = {k: v for k, v in f.metadata().items() if k in ("configs", "families", "extra")}
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("rng.")}
    save_file(tensors, str(path), metadata={**meta, "step": "3"})
    r = small_run(tmp_path / "old", steps=6, val_every=3, n_images=4, resume=True)
    assert len(r["history"]) == 3
    assert lrs(tmp_path / "old") == lrs(tmp_path / "whole")


def test_cyclegan_real_photo_domains_are_bright_frames_and_training_photos():
    """scripts/train_cyclegan_real.py trains on the training split only: real SICE frames brighter than
    mean luminance 0.6 (the over-exposed domain) and the well-exposed photos."""
    from conftest import load_script
    from edgeenhance.data.photosets import photo_files
    from edgeenhance.noref import mean_luminance

    cg = load_script("scripts/train_cyclegan_real.py")
    over, normal = cg.domains(SHARED, progress=False)
    assert len(normal) == len(photo_files(SHARED / "photos", "train"))
    assert 50 < len(over) < len(photo_files(SHARED / "exposure" / "sice_part1", "train"))
    assert min(mean_luminance(o) for o in over) > 0.595 and np.mean([mean_luminance(n) for n in normal]) < 0.6
    assert max(max(o.shape[:2]) for o in over + normal) <= cg.MAX_SIDE and over[0].dtype == np.float32
